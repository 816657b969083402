"""The time-series point model shared by the InfluxDB projection and its embedded SQLite stand-in, and the
mapping from events to points.

A point is (measurement, tag set, fields, time_ns); like InfluxDB, a point with the same measurement, tag set
and time as an earlier one overwrites it, so writing a batch twice is harmless. Every series carries the tag
`session`. Series:

- `mid`      {session, venue, instrument}                 mid, bid, ask, spread_bps        (market.quote)
- `spread`   {session, instrument, buy_venue, sell_venue}  buy_price, sell_price, quantity, gross_edge_bps,
                                                           net_edge_bps                     (signal.spread_opportunity)
- `signals`  {session, kind, strategy|model, instrument[, buy_venue, sell_venue]}  net_edge_bps / score, id
- `fills`    {session, venue, instrument, side, liquidity, trade}  price, quantity, fee, fee_currency, order_id
- `equity`   {session, account, quote_currency}            equity, cash, realized_pnl, unrealized_pnl, fees

Quotes may be downsampled (`quote_interval_ns` > 0): each quote is stamped at the start of its interval, so
the series keeps the last quote of every interval — the same result however the log is cut into batches and
however often it is replayed (and duplicates within a batch are dropped before they are sent).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from adapters.influx_http import FieldValue, encode_line
from domain.events import (
    EquitySampled,
    EventBase,
    ModelScored,
    OrderFillEvent,
    QuoteTick,
    SpreadOpportunityDetected,
)

_TWO = Decimal(2)
_BPS = Decimal(10_000)

POINT_EVENT_TYPES = frozenset({
    "market.quote", "signal.spread_opportunity", "signal.model_score", "order.partially_filled", "order.filled",
    "portfolio.equity_sampled",
})  # fmt: skip
"""Event types that become points; the projector does not even decode the others."""


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: tuple[tuple[str, str], ...]
    """Sorted by key."""
    fields: tuple[tuple[str, FieldValue], ...]
    time_ns: int

    @staticmethod
    def make(measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], time_ns: int) -> Point:
        return Point(measurement, tuple(sorted(tags.items())), tuple(fields.items()), time_ns)

    @property
    def series_key(self) -> tuple[str, tuple[tuple[str, str], ...], int]:
        return (self.measurement, self.tags, self.time_ns)

    def line(self) -> str:
        return encode_line(self.measurement, dict(self.tags), dict(self.fields), self.time_ns)

    def tag_string(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.tags)

    def fields_json(self) -> str:
        return json.dumps({k: _jsonable(v) for k, v in self.fields}, sort_keys=True, separators=(",", ":"))


def _jsonable(v: FieldValue) -> Any:
    return str(v) if isinstance(v, Decimal) else v


def points_for(event: EventBase, session_id: str, *, quote_interval_ns: int = 0) -> list[Point]:
    t = event.envelope.event_time_ns
    if isinstance(event, QuoteTick):
        if event.bid_price <= 0 or event.ask_price < event.bid_price:
            return []  # crossed or empty book: no meaningful mid
        mid = (event.bid_price + event.ask_price) / _TWO
        if quote_interval_ns > 0:
            t -= t % quote_interval_ns
        return [Point.make("mid", {"session": session_id, "venue": event.venue, "instrument": event.instrument},
                           {"mid": mid, "bid": event.bid_price, "ask": event.ask_price,
                            "spread_bps": (event.ask_price - event.bid_price) / mid * _BPS}, t)]  # fmt: skip
    if isinstance(event, SpreadOpportunityDetected):
        return [
            Point.make("spread", {"session": session_id, "instrument": event.instrument,
                                  "buy_venue": event.buy_venue, "sell_venue": event.sell_venue},
                       {"buy_price": event.buy_price, "sell_price": event.sell_price, "quantity": event.quantity,
                        "gross_edge_bps": event.gross_edge_bps, "net_edge_bps": event.net_edge_bps}, t),
            Point.make("signals", {"session": session_id, "kind": "spread_opportunity",
                                   "strategy": event.strategy_id, "instrument": event.instrument,
                                   "buy_venue": event.buy_venue, "sell_venue": event.sell_venue},
                       {"net_edge_bps": event.net_edge_bps, "id": str(event.opportunity_id)}, t),
        ]  # fmt: skip
    if isinstance(event, ModelScored):
        return [Point.make("signals", {"session": session_id, "kind": "model_score", "model": event.model_hash,
                                       "instrument": event.instrument}, {"score": event.score}, t)]  # fmt: skip
    if isinstance(event, OrderFillEvent):
        return [Point.make("fills", {"session": session_id, "venue": event.venue, "instrument": event.instrument,
                                     "side": event.side.value, "liquidity": event.liquidity.value,
                                     "trade": event.venue_trade_id},
                           {"price": event.price, "quantity": event.quantity, "fee": event.fee,
                            "fee_currency": event.fee_currency, "order_id": str(event.order_id)}, t)]  # fmt: skip
    if isinstance(event, EquitySampled):
        return [Point.make("equity", {"session": session_id, "account": event.account,
                                      "quote_currency": event.quote_currency},
                           {"equity": event.equity, "cash": event.cash, "realized_pnl": event.realized_pnl,
                            "unrealized_pnl": event.unrealized_pnl, "fees": event.fees}, t)]  # fmt: skip
    return []


def dedupe(points: Iterable[Point]) -> list[Point]:
    """Keep the last point of each (series, time), in first-seen order: what the server would keep anyway."""
    out: dict[tuple[str, tuple[tuple[str, str], ...], int], Point] = {}
    for p in points:
        out.pop(p.series_key, None)
        out[p.series_key] = p
    return list(out.values())
