"""Backtest metrics, computed from the same events the log holds (inputs and derived).

Money sums stay Decimal; ratios (Sharpe, Sortino, hit ratio, slippage in bps) are floats because they are
statistics, not money.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from domain.events import (
    EquitySampled,
    EventBase,
    OrderFillEvent,
    PlaceOrder,
    QuoteTick,
    RiskCheckRejected,
    SpreadOpportunityDetected,
)
from domain.values import ZERO

MINUTES_PER_YEAR = 365 * 24 * 60


@dataclass
class LegStats:
    orders: int = 0
    ordered_quantity: Decimal = ZERO
    filled_quantity: Decimal = ZERO
    notional: Decimal = ZERO
    fees: Decimal = ZERO
    slippage_bps_weighted: float = 0.0
    """Sum of quantity-weighted slippage against the arrival mid, in bps (positive = paid more than mid)."""

    def as_dict(self) -> dict[str, Any]:
        filled = float(self.filled_quantity)
        return {
            "orders": self.orders,
            "ordered_quantity": str(self.ordered_quantity),
            "filled_quantity": str(self.filled_quantity),
            "fill_ratio": filled / float(self.ordered_quantity) if self.ordered_quantity else 0.0,
            "notional": str(self.notional),
            "fees": str(self.fees),
            "avg_slippage_bps": self.slippage_bps_weighted / filled if filled else 0.0,
        }


@dataclass
class _Group:
    cash: Decimal = ZERO
    net_quantity: Decimal = ZERO
    instrument: str = ""
    venue: str = ""


@dataclass
class BacktestMetrics:
    """Feed it every event of a run (`observe`), then read `summary()`."""

    equity: list[tuple[int, Decimal]] = field(default_factory=list)
    spreads: list[tuple[int, float]] = field(default_factory=list)
    opportunities: int = 0
    risk_rejections: int = 0
    fees: Decimal = ZERO
    legs: dict[str, LegStats] = field(default_factory=dict)
    _mids: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    _arrival_mid: dict[uuid.UUID, Decimal] = field(default_factory=dict)
    _order_group: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    _groups: dict[uuid.UUID, _Group] = field(default_factory=dict)

    def observe(self, event: EventBase) -> None:
        if isinstance(event, QuoteTick):
            self._mids[(event.venue, event.instrument)] = (event.bid_price + event.ask_price) / 2
        elif isinstance(event, SpreadOpportunityDetected):
            self.opportunities += 1
            self.spreads.append((event.envelope.event_time_ns, float(event.gross_edge_bps)))
        elif isinstance(event, PlaceOrder):
            self._on_order(event)
        elif isinstance(event, OrderFillEvent):
            self._on_fill(event)
        elif isinstance(event, EquitySampled):
            self.equity.append((event.envelope.event_time_ns, event.equity))
        elif isinstance(event, RiskCheckRejected):
            self.risk_rejections += 1

    def _on_order(self, order: PlaceOrder) -> None:
        leg = self.legs.setdefault(order.venue, LegStats())
        leg.orders += 1
        leg.ordered_quantity += order.quantity
        mid = self._mids.get((order.venue, order.instrument))
        if mid is not None:
            self._arrival_mid[order.order_id] = mid
        if order.leg_group_id is not None:
            self._order_group[order.order_id] = order.leg_group_id

    def _on_fill(self, fill: OrderFillEvent) -> None:
        leg = self.legs.setdefault(fill.venue, LegStats())
        leg.filled_quantity += fill.quantity
        leg.notional += fill.price * fill.quantity
        leg.fees += fill.fee
        self.fees += fill.fee
        mid = self._arrival_mid.get(fill.order_id)
        if mid:
            slip = float((fill.price - mid) / mid) * 10_000 * fill.side.sign
            leg.slippage_bps_weighted += slip * float(fill.quantity)
        group_id = self._order_group.get(fill.order_id)
        if group_id is not None:
            group = self._groups.setdefault(group_id, _Group(instrument=fill.instrument, venue=fill.venue))
            group.cash -= fill.side.sign * fill.price * fill.quantity + fill.fee
            group.net_quantity += fill.side.sign * fill.quantity

    def summary(self, starting_equity: Decimal) -> dict[str, Any]:
        final = self.equity[-1][1] if self.equity else starting_equity
        returns = _minute_returns(self.equity)
        traded = sum((leg.notional for leg in self.legs.values()), ZERO)
        ordered = sum((leg.ordered_quantity for leg in self.legs.values()), ZERO)
        filled = sum((leg.filled_quantity for leg in self.legs.values()), ZERO)
        group_pnls = [self._group_pnl(g) for g in self._groups.values()]
        return {
            "starting_equity": str(starting_equity),
            "final_equity": str(final),
            "pnl": str(final - starting_equity),
            "fees": str(self.fees),
            "sharpe_annualized": _sharpe(returns, downside_only=False),
            "sortino_annualized": _sharpe(returns, downside_only=True),
            "max_drawdown_fraction": _max_drawdown(self.equity),
            "turnover": str(traded),
            "turnover_over_equity": float(traded / starting_equity) if starting_equity else 0.0,
            "opportunities": self.opportunities,
            "trades": len(group_pnls),
            "hit_ratio": sum(1 for p in group_pnls if p > 0) / len(group_pnls) if group_pnls else 0.0,
            "fill_ratio": float(filled / ordered) if ordered else 0.0,
            "risk_rejections": self.risk_rejections,
            "equity_samples": len(self.equity),
            "legs": {venue: self.legs[venue].as_dict() for venue in sorted(self.legs)},
        }

    def _group_pnl(self, group: _Group) -> Decimal:
        # An imbalance left open is marked at the last mid of the venue it was traded on.
        mid = self._mids.get((group.venue, group.instrument), ZERO)
        return group.cash + group.net_quantity * mid


def _minute_returns(equity: list[tuple[int, Decimal]]) -> list[float]:
    """Returns between the last equity sample of consecutive minutes (samples may be finer than a minute)."""
    last_of_minute: dict[int, Decimal] = {}
    for time_ns, value in equity:  # in event-time order, so the dict keeps minutes in order
        last_of_minute[time_ns // 60_000_000_000] = value
    values = [float(e) for e in last_of_minute.values()]
    return [(b - a) / a for a, b in zip(values, values[1:], strict=False) if a]


def _sharpe(returns: list[float], downside_only: bool) -> float:
    if len(returns) < 2:
        return 0.0
    mean = sum(returns) / len(returns)
    deviations = [min(r, 0.0) for r in returns] if downside_only else [r - mean for r in returns]
    variance = sum(d * d for d in deviations) / (len(returns) - (0 if downside_only else 1))
    if variance <= 0:
        return 0.0
    return mean / math.sqrt(variance) * math.sqrt(MINUTES_PER_YEAR)


def _max_drawdown(equity: list[tuple[int, Decimal]]) -> float:
    peak = None
    worst = 0.0
    for _, value in equity:
        peak = value if peak is None or value > peak else peak
        if peak:
            worst = max(worst, float((peak - value) / peak))
    return worst
