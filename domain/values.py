"""Value types shared by events and deciders. Money and quantities are Decimal, never float."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


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


class RiskLimits(BaseModel):
    """Pre-trade limits; amounts in the quote currency of the instrument unless named otherwise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_order_notional: Amount = Decimal("100000")
    max_position_per_asset_venue: Amount = Decimal("10")
    max_gross_exposure: Amount = Decimal("1000000")
    max_open_orders: int = 20
    price_collar_bps: Amount = Decimal("50")
    max_orders_per_venue_per_second: int = 50
    max_drawdown_fraction: Amount = Decimal("0.05")
    drawdown_action: str = "halt"  # "halt": refuse every order; "reduce_only": only orders that shrink a position


ZERO = Decimal(0)
BPS = Decimal(10_000)
