"""What a market-data row must satisfy to be stored, whatever its format: prices positive, sizes not negative
(a trade's positive), a quote and a snapshot not crossed or locked. A venue never publishes such a row, so it
is a recording or a parsing fault; storing it would let a backtest trade at a price nobody offered.

A depth update cannot be checked for crossing on its own (that needs the book it applies to: the book
decider's job); its levels are checked like a snapshot's. A size of zero in a depth level means "remove the
level" and is valid.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from domain.events import BookDelta, BookSnapshot, EventBase, Level, QuoteTick, TradeTick

_ZERO = Decimal(0)

Refusal = tuple[str, str]
"""(reason, detail): the reason is what rows are counted by in the import report."""


def refusal(event: EventBase) -> Refusal | None:
    """Why `event` must not be stored, or None when it may be."""
    if isinstance(event, QuoteTick):
        return _quote(event)
    if isinstance(event, TradeTick):
        if event.price <= _ZERO:
            return "price not positive", f"price={event.price}"
        if event.size <= _ZERO:
            return "size not positive", f"trade size={event.size}"
        return None
    if isinstance(event, BookSnapshot):
        return _levels(event.bids, "bid") or _levels(event.asks, "ask") or _snapshot_crossed(event)
    if isinstance(event, BookDelta):
        return _levels(event.bids, "bid") or _levels(event.asks, "ask")
    return None


def _quote(q: QuoteTick) -> Refusal | None:
    for name, price in (("bid_price", q.bid_price), ("ask_price", q.ask_price)):
        if price <= _ZERO:
            return "price not positive", f"{name}={price}"
    for name, size in (("bid_size", q.bid_size), ("ask_size", q.ask_size)):
        if size < _ZERO:
            return "size negative", f"{name}={size}"
    if q.bid_price > q.ask_price:
        return "crossed quote", f"bid {q.bid_price} > ask {q.ask_price}"
    if q.bid_price == q.ask_price:
        return "locked quote", f"bid = ask = {q.bid_price}"
    return None


def _levels(levels: Iterable[Level], side: str) -> Refusal | None:
    for price, size in levels:
        if price <= _ZERO:
            return "price not positive", f"{side} level price={price}"
        if size < _ZERO:
            return "size negative", f"{side} level {price} size={size}"
    return None


def _snapshot_crossed(s: BookSnapshot) -> Refusal | None:
    bids = [price for price, size in s.bids if size > _ZERO]
    asks = [price for price, size in s.asks if size > _ZERO]
    if bids and asks and max(bids) >= min(asks):
        return "crossed snapshot", f"best bid {max(bids)} >= best ask {min(asks)}"
    return None
