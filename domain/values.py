"""Value types shared by events and deciders. Money and quantities are Decimal, never float."""

from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

DECIMAL_CONTEXT = Context(
    prec=34, rounding=ROUND_HALF_EVEN, Emin=-999_999, Emax=999_999, capitals=1, clamp=0, flags=[],
    traps=[InvalidOperation, DivisionByZero, Overflow],
)  # fmt: skip
"""The one arithmetic context of the domain (IEEE decimal128 precision, banker's rounding). Every field is
spelled out so neither the caller's context nor a changed `decimal.DefaultContext` leaks into a result."""


def decimal_context() -> AbstractContextManager[Context]:
    """`with decimal_context():` runs a block in DECIMAL_CONTEXT, whatever context the caller has set."""
    return localcontext(DECIMAL_CONTEXT)


def canonical_amount(value: Decimal) -> str:
    """The one text of an amount in canonical JSON: plain notation (never an exponent), no trailing zeros after
    the point, no point for an integer, zero always `0` (never `-0`, `0.00`). Exact: no rounding, so
    `"0.050"`, `"0.05"` and `"5E-2"` all become `"0.05"` and `"1E-7"` becomes `"0.0000001"`."""
    if not value:
        return "0"
    text = format(value, "f")  # plain notation with every digit; no context involved
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _refuse_float(value: Any) -> Any:
    # A float has already lost precision; accepting it would make money depend on how it was typed.
    if isinstance(value, float):
        raise ValueError("money and quantities must be Decimal, int or a decimal string, not float")
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_refuse_float),
    PlainSerializer(canonical_amount, return_type=str, when_used="json"),
]
"""Any price, quantity, fee or cash amount. Finite: pydantic's Decimal refuses NaN and infinities itself.
In JSON it is a string in the normal form of `canonical_amount`."""


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
