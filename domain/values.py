"""Value types shared by events and deciders. Money and quantities are Decimal, never float."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    getcontext,
    setcontext,
)
from enum import StrEnum
from functools import lru_cache, wraps
from typing import Annotated, Any, ParamSpec, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

DECIMAL_CONTEXT = Context(
    prec=34, rounding=ROUND_HALF_EVEN, Emin=-999_999, Emax=999_999, capitals=1, clamp=0, flags=[],
    traps=[InvalidOperation, DivisionByZero, Overflow],
)  # fmt: skip
"""The one arithmetic context of the domain (IEEE decimal128 precision, banker's rounding). Every field is
spelled out so neither the caller's context nor a changed `decimal.DefaultContext` leaks into a result."""


P = ParamSpec("P")
R = TypeVar("R")


class _DomainContext(Context):
    """A context set by `decimal_context()`: its type tells a decider's wrapper the block already runs in
    DECIMAL_CONTEXT (a type check costs a tenth of entering a context, and deciders are called per event)."""

    __slots__ = ()


class _DomainScope:
    """Sets a fresh `_DomainContext` equal to DECIMAL_CONTEXT for a block (fresh: flags never leak between
    blocks), and restores the caller's context after it."""

    __slots__ = ("_saved",)

    def __enter__(self) -> Context:
        self._saved = getcontext()
        c = DECIMAL_CONTEXT
        context = _DomainContext(prec=c.prec, rounding=c.rounding, Emin=c.Emin, Emax=c.Emax, capitals=c.capitals,
                                 clamp=c.clamp, flags=[], traps=[s for s, on in c.traps.items() if on])  # fmt: skip
        setcontext(context)
        return context

    def __exit__(self, *exc: object) -> None:
        setcontext(self._saved)


def decimal_context() -> AbstractContextManager[Context]:
    """`with decimal_context():` runs a block in DECIMAL_CONTEXT, whatever context the caller has set."""
    return _DomainScope()


def in_decimal_context(function: Callable[P, R]) -> Callable[P, R]:
    """Runs `function` (a decider's `decide` / `evolve`) in DECIMAL_CONTEXT; directly when the caller (the
    kernel) already runs in it."""

    @wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if type(getcontext()) is _DomainContext:
            return function(*args, **kwargs)
        with _DomainScope():
            return function(*args, **kwargs)

    return run


@lru_cache(maxsize=1 << 16)  # prices repeat; equal amounts have one text, so a cache hit is always right
def canonical_amount(value: Decimal) -> str:
    """The one text of an amount in canonical JSON: plain notation (never an exponent), no trailing zeros after
    the point, no point for an integer, zero always `0` (never `-0`, `0.00`). Exact: no rounding, so
    `"0.050"`, `"0.05"` and `"5E-2"` all become `"0.05"` and `"1E-7"` becomes `"0.0000001"`."""
    text = str(value)  # exact, no context involved; scientific only for very small or large exponents
    if "E" in text:
        text = format(value, "f")  # plain notation, every digit
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


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
