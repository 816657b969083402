"""Value types shared by events and deciders. Money and quantities are Decimal, never float."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _refuse_float(value: Any) -> Any:
    # A float has already lost precision; accepting it would make money depend on how it was typed.
    if isinstance(value, float):
        raise ValueError("money and quantities must be Decimal, int or a decimal string, not float")
    return value


Amount = Annotated[Decimal, BeforeValidator(_refuse_float)]
"""Any price, quantity, fee or cash amount. Finite: pydantic's Decimal refuses NaN and infinities itself."""


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class DrawdownAction(StrEnum):
    HALT = "halt"
    """Refuse every new order except leg repairs."""
    REDUCE_ONLY = "reduce_only"
    """Only orders that shrink a position (and leg repairs) pass."""


class RiskLimits(BaseModel):
    """Pre-trade limits; amounts in the quote currency of the instrument unless named otherwise. Every limit
    is positive: a zero or negative limit is a configuration mistake (it would refuse everything), so it is
    refused with the field's name rather than silently stalling a run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_order_notional: Amount = Field(default=Decimal("100000"), gt=0)
    max_position_per_asset_venue: Amount = Field(default=Decimal("10"), gt=0)
    max_gross_exposure: Amount = Field(default=Decimal("1000000"), gt=0)
    max_open_orders: int = Field(default=20, gt=0)
    price_collar_bps: Amount = Field(default=Decimal("50"), gt=0)
    max_orders_per_venue_per_second: int = Field(default=50, gt=0)
    max_drawdown_fraction: Amount = Field(default=Decimal("0.05"), gt=0, le=1)
    drawdown_action: DrawdownAction = DrawdownAction.HALT
    repairs_under_kill_switch: bool = False
    """Whether a leg repair (hedge/unwind of a failed spread leg) may still go out while the kill switch is
    engaged. Off by default: the kill switch means nothing leaves; an operator who would rather flatten a
    naked leg automatically turns it on."""


ZERO = Decimal(0)
BPS = Decimal(10_000)
