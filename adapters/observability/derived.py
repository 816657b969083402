"""Trading metrics read off the derived-event stream: the one place orders, fills, rejections, the kill
switch, drawdown, venue circuit breakers, PnL, exposure and spreads become Prometheus series (a live
session's breaker changes are inputs, not derived: its run passes them here too). The deciders stay pure; whoever runs
a kernel (the worker, an embedded run) passes each derived event to `DerivedEventMetrics`.

Dispatch is on the event's `type` string, so an event type this module does not know is simply not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from adapters.observability import metrics as m
from domain.events import EventBase
from domain.values import Side


def _f(value: Any) -> float:
    return float(Decimal(str(value)))


class DerivedEventMetrics:
    """`observer(event)` for each derived event of one account's runs."""

    def __init__(self, account: str = "default") -> None:
        self.account = account
        self._handlers: dict[str, Callable[[Any], None]] = {
            "command.place_order": self._order,
            "order.partially_filled": self._fill,
            "order.filled": self._fill,
            "order.rejected": self._venue_rejection,
            "risk.check_rejected": self._risk_rejection,
            "risk.kill_switch_engaged": self._kill_switch_engaged,
            "risk.kill_switch_released": self._kill_switch_released,
            "risk.drawdown_breached": self._drawdown,
            "risk.drawdown_halt_released": self._drawdown_released,
            "risk.venue_circuit_changed": self._venue_circuit,
            "portfolio.equity_sampled": self._equity,
            "signal.spread_opportunity": self._spread,
        }

    def __call__(self, event: EventBase) -> None:
        handler = self._handlers.get(event.type)
        if handler is not None:
            handler(event)

    def _order(self, e: Any) -> None:
        m.ORDERS.labels(e.venue, e.instrument).inc()

    def _fill(self, e: Any) -> None:
        m.FILLS.labels(e.venue, e.instrument, str(e.liquidity)).inc()
        quantity = _f(e.quantity)
        m.POSITION.labels(e.venue, e.instrument).inc(quantity if e.side is Side.BUY else -quantity)

    def _venue_rejection(self, e: Any) -> None:
        m.VENUE_REJECTIONS.labels(e.venue).inc()

    def _risk_rejection(self, e: Any) -> None:
        m.RISK_REJECTIONS.labels(e.rule).inc()

    def _kill_switch_engaged(self, _: Any) -> None:
        m.KILL_SWITCH.labels(self.account).set(1)
        m.KILL_SWITCH_TRIPS.labels(self.account).inc()

    def _kill_switch_released(self, _: Any) -> None:
        m.KILL_SWITCH.labels(self.account).set(0)

    def _drawdown(self, e: Any) -> None:
        m.DRAWDOWN_HALTED.labels(self.account).set(1)
        m.DRAWDOWN.labels(self.account).set(_f(e.drawdown_fraction))

    def _drawdown_released(self, _: Any) -> None:
        m.DRAWDOWN_HALTED.labels(self.account).set(0)

    def _venue_circuit(self, e: Any) -> None:
        m.VENUE_CIRCUIT_OPEN.labels(e.venue).set(0 if e.state == "closed" else 1)

    def _equity(self, e: Any) -> None:
        account, currency = e.account, e.quote_currency
        m.EQUITY.labels(account, currency).set(_f(e.equity))
        m.PNL.labels(account, currency, "realized").set(_f(e.realized_pnl))
        m.PNL.labels(account, currency, "unrealized").set(_f(e.unrealized_pnl))
        m.FEES.labels(account, currency).set(_f(e.fees))
        # equity = cash + market value of the positions, so their difference is the net exposure
        m.EXPOSURE.labels(account, currency).set(_f(e.equity) - _f(e.cash))

    def _spread(self, e: Any) -> None:
        labels = (e.instrument, e.buy_venue, e.sell_venue)
        m.SPREAD_OPPORTUNITIES.labels(*labels).inc()
        m.SPREAD_EDGE.labels(*labels, "gross").set(_f(e.gross_edge_bps))
        m.SPREAD_EDGE.labels(*labels, "net").set(_f(e.net_edge_bps))
