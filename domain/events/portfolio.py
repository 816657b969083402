"""Portfolio valuations, sampled on event time so the equity curve is part of the replayable record."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from domain.events.base import EventBase
from domain.values import Amount


class CurrencyValuation(BaseModel):
    """One currency's holdings (cash + spot positions at their mark + derivative PnL) and how they were
    converted to the report currency: at `price`, the latest mid of `price_instrument` ("venue:instrument";
    empty for the report currency itself, price 1). `price` and `value` are null when no recorded price
    converts this currency: such a balance is left out of every total, never added at par."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str
    balance: Amount
    price: Amount | None
    price_instrument: str
    value: Amount | None


class EquitySampled(EventBase):
    """Totals in `quote_currency` (the report currency), each the sum over `valuations` that could be
    converted. `unaccounted_fills` names the instruments ("venue:instrument") with fills the portfolio could
    not account because no InstrumentDefined specified them."""

    SCHEMA_VERSION: ClassVar[int] = 2

    type: Literal["portfolio.equity_sampled"] = "portfolio.equity_sampled"
    schema_version: int = 2
    account: str
    quote_currency: str
    equity: Amount
    cash: Amount
    realized_pnl: Amount
    unrealized_pnl: Amount
    fees: Amount
    valuations: tuple[CurrencyValuation, ...] = ()
    unaccounted_fills: tuple[str, ...] = ()


def upcast_equity_sampled_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """v1 had no per-currency valuations: every amount was one currency counted at par."""
    return {**raw, "valuations": [], "unaccounted_fills": []}
