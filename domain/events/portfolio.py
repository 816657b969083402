"""Portfolio valuations, sampled on event time so the equity curve is part of the replayable record."""

from __future__ import annotations

from typing import Literal

from domain.events.base import EventBase
from domain.values import Amount


class EquitySampled(EventBase):
    type: Literal["portfolio.equity_sampled"] = "portfolio.equity_sampled"
    account: str
    quote_currency: str
    equity: Amount
    cash: Amount
    realized_pnl: Amount
    unrealized_pnl: Amount
    fees: Amount
