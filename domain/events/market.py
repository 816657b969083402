"""Market data as the venues publish it: top of book, trades, L2 snapshots and deltas."""

from __future__ import annotations

from typing import Literal

from domain.events.base import EventBase
from domain.values import Amount, Side

Level = tuple[Amount, Amount]
"""(price, quantity); quantity 0 in a delta removes the level."""


class QuoteTick(EventBase):
    type: Literal["market.quote"] = "market.quote"
    venue: str
    instrument: str
    bid_price: Amount
    bid_size: Amount
    ask_price: Amount
    ask_size: Amount
    venue_update_id: int | None = None
    exchange_time_ns: int | None = None
    """The venue's own timestamp where it sends one (Binance `E`); the engine runs on envelope event time."""


class TradeTick(EventBase):
    type: Literal["market.trade"] = "market.trade"
    venue: str
    instrument: str
    price: Amount
    size: Amount
    aggressor_side: Side
    venue_trade_id: str
    exchange_time_ns: int | None = None


class BookSnapshot(EventBase):
    type: Literal["market.book_snapshot"] = "market.book_snapshot"
    venue: str
    instrument: str
    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


class BookDelta(EventBase):
    """Binance-style sequence numbers: spot checks `first_update_id == previous final + 1`; futures carry
    `previous_final_update_id` (Binance `pu`) which must equal the previous delta's final id."""

    type: Literal["market.book_delta"] = "market.book_delta"
    venue: str
    instrument: str
    first_update_id: int
    final_update_id: int
    previous_final_update_id: int | None = None
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    exchange_time_ns: int | None = None


class BookResyncNeeded(EventBase):
    type: Literal["market.book_resync_needed"] = "market.book_resync_needed"
    venue: str
    instrument: str
    expected_update_id: int
    received_first_update_id: int
    reason: str
