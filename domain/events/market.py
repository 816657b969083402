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


class InstrumentDefined(EventBase):
    """What an instrument is and how it trades, as the venue specifies it; recorded at the start of every
    session, before its market data, so accounting and the simulated venue never guess from a symbol.

    `kind`: "spot"; "linear" (a contract is `contract_size` base units, PnL in the quote/settlement coin);
    "inverse" (a contract is worth `contract_size` units of the quote currency, e.g. 100 USD for Binance
    COIN-M BTCUSD_PERP, settled in the base coin: PnL = contracts * contract_size * (1/entry - 1/exit)).
    `tick_size` and `lot_size` are the price and quantity increments, `min_notional` the smallest order value
    in the quote currency (0 when the venue has none), fees the venue's default tier in basis points."""

    type: Literal["market.instrument_defined"] = "market.instrument_defined"
    venue: str
    instrument: str
    base: str
    quote: str
    settlement: str
    kind: Literal["spot", "linear", "inverse"]
    contract_size: Amount
    tick_size: Amount
    lot_size: Amount
    min_notional: Amount
    maker_fee_bps: Amount
    taker_fee_bps: Amount
