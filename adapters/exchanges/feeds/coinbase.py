"""Coinbase Advanced Trade (ccxt `coinbase`), per docs.cdp.coinbase.com/advanced-trade/docs/ws-channels.

Websocket (ccxt's `urls.api.ws`), one `subscribe` per channel: `level2` (messages on channel `l2_data`: a
`snapshot` event of the whole book, then `update`s setting levels, `new_quantity` 0 removing one),
`market_trades`, `ticker` (best bid/ask), and `heartbeats` (keeps a quiet connection open). Products are
Coinbase's ids (BTC-USD), our instrument names too.
Sequence: every message of a connection carries `sequence_num`, one more than the previous message's (over
all channels), so a gap says a message was lost but not which: every book of the connection is resynced
(a recorded BookResyncNeeded, then resubscribe for new snapshots). Books get the recorder's own contiguous
update ids (snapshot n, updates n+1, ...). Trades: Coinbase's `side` is the **maker's**, so the aggressor
is the opposite side.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from adapters.exchanges.feeds.base import FeedSession, Instrument, Resubscribe, SubscriptionRefused
from domain.events import BookDelta, BookSnapshot, Level, QuoteTick, TradeTick
from domain.values import Side

CHANNELS = ("level2", "market_trades", "ticker", "heartbeats")
_AGGRESSOR_OF_MAKER_SIDE = {"BUY": Side.SELL, "SELL": Side.BUY}


def _ns(timestamp: str) -> int:
    """RFC 3339 with up to nanoseconds (Coinbase writes 9 digits) -> ns since the epoch, exactly."""
    head, _, rest = timestamp.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(head + "+00:00").timestamp())
    digits = "".join(c for c in rest if c.isdigit())[:9]
    return seconds * 1_000_000_000 + int(digits.ljust(9, "0") or 0)


def _sides(updates: Any) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
    bids = tuple((u["price_level"], u["new_quantity"]) for u in updates if u["side"] == "bid")
    asks = tuple((u["price_level"], u["new_quantity"]) for u in updates if u["side"] in ("offer", "ask"))
    return bids, asks


class CoinbaseFeed:
    def __init__(self) -> None:
        self.next_sequence: int | None = None

    def ws_url(self, exchange: Any) -> str:
        url: str = exchange.urls["api"]["ws"]
        return url

    def subscriptions(self, instruments: Sequence[Instrument]) -> list[dict[str, Any]]:
        ids = [i.id for i in instruments]
        return [{"type": "subscribe", "product_ids": ids, "channel": channel} for channel in CHANNELS]

    def on_connected(self, session: FeedSession) -> None:
        self.next_sequence = None  # numbering starts afresh on every connection

    def on_message(self, session: FeedSession, message: Any, receive_ns: int) -> None:
        if not isinstance(message, dict):
            return
        if message.get("type") == "error":
            raise SubscriptionRefused(f"{session.venue}: {message.get('message')}")
        sequence = message.get("sequence_num")
        if isinstance(sequence, int):
            expected, self.next_sequence = self.next_sequence, sequence + 1
            if expected is not None and sequence != expected:
                for instrument_id in sorted(session.instruments):
                    if session.book(instrument_id).in_sync:
                        session.resync(
                            instrument_id, f"sequence_num gap: {sequence} != expected {expected}", receive_ns
                        )
                self.resync(session, "")
        channel = message.get("channel")
        for event in message.get("events") or []:
            if channel == "l2_data":
                self._book(session, event, receive_ns)
            elif channel == "market_trades":
                for trade in event.get("trades") or []:
                    instrument = trade.get("product_id")
                    if instrument in session.instruments:
                        session.record(instrument, receive_ns, lambda env, t=trade, i=instrument: TradeTick(
                            envelope=env, venue=session.venue, instrument=i, price=t["price"], size=t["size"],
                            aggressor_side=_AGGRESSOR_OF_MAKER_SIDE[t["side"]], venue_trade_id=str(t["trade_id"]),
                            exchange_time_ns=_ns(t["time"])))  # fmt: skip
            elif channel == "ticker":
                for ticker in event.get("tickers") or []:
                    instrument = ticker.get("product_id")
                    if instrument in session.instruments:
                        session.record(instrument, receive_ns, lambda env, t=ticker, i=instrument: QuoteTick(
                            envelope=env, venue=session.venue, instrument=i, bid_price=t["best_bid"],
                            bid_size=t["best_bid_quantity"], ask_price=t["best_ask"], ask_size=t["best_ask_quantity"],
                            exchange_time_ns=_ns(message["timestamp"]) if "timestamp" in message else None))  # fmt: skip

    def _book(self, session: FeedSession, event: Any, receive_ns: int) -> None:
        instrument = event.get("product_id")
        if instrument not in session.instruments:
            return
        book = session.book(instrument)
        bids, asks = _sides(event.get("updates") or [])
        update_id = book.applied_update_id + 1
        if event.get("type") == "snapshot":
            if book.in_sync:
                session.resync(instrument, "new snapshot on a book in sync", receive_ns)
            session.book_event(instrument, receive_ns, lambda env: BookSnapshot(
                envelope=env, venue=session.venue, instrument=instrument, last_update_id=update_id,
                bids=bids, asks=asks))  # fmt: skip
        elif event.get("type") == "update" and book.in_sync:
            times = [_ns(u["event_time"]) for u in event.get("updates") or [] if u.get("event_time")]
            session.book_event(instrument, receive_ns, lambda env: BookDelta(
                envelope=env, venue=session.venue, instrument=instrument, first_update_id=update_id,
                final_update_id=update_id, bids=bids, asks=asks, exchange_time_ns=max(times) if times else None))  # fmt: skip

    def resync(self, session: FeedSession, instrument_id: str) -> None:
        raise Resubscribe(f"{session.venue}: books out of sync")

    async def fetch_snapshot(self, exchange: Any, instrument_id: str) -> Any:
        raise NotImplementedError("Coinbase resends its books on subscription")

    def on_snapshot(self, session: FeedSession, instrument_id: str, snapshot: Any, receive_ns: int) -> None:
        raise NotImplementedError("Coinbase resends its books on subscription")
