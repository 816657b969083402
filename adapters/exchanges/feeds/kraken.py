"""Kraken spot (ccxt `kraken`), websocket v2 per docs.kraken.com/api/docs/websocket-v2/book, /trade, /ticker.

Websocket `.../v2`, one `subscribe` per channel: `book` (depth 10), `trade`, `ticker` (best bid/ask); symbols
in ccxt's unified form (BTC/USDT), our instrument the REST pair id (XBTUSDT). Numbers are JSON numbers,
read back as the decimals Kraken printed (`decimal_of`).
Book: no sequence numbers; Kraken sends a CRC32 `checksum` of the top 10 asks and bids with every update, and
does not send levels pushed out of the subscribed depth: the client truncates. So each update is recorded as
a BookDelta with the recorder's own contiguous ids (snapshot n, then n+1, ...) and with the truncated levels
added as removals (the recorded deltas alone rebuild the 10-level book), then the book's checksum is checked:
a mismatch records a BookResyncNeeded and resubscribes the book on the same connection (a new snapshot). Trades: `side` is the taker's side.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from adapters.exchanges.feeds.base import FeedSession, Instrument, SubscriptionRefused
from adapters.exchanges.market_definitions import decimal_of
from domain.book import SyncedBook
from domain.events import BookDelta, BookSnapshot, Level, QuoteTick, TradeTick
from domain.values import Side

DEPTH = 10
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}


def _places(step: Any) -> int:
    exponent = decimal_of(step).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def _ns(timestamp: str) -> int:
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def checksum(bids: Sequence[Level], asks: Sequence[Level], price_places: int, qty_places: int) -> int:
    """Kraken's CRC32 over the top 10 asks (best first) then bids (best first): each price and quantity printed
    with the pair's decimals, '.' removed, leading zeros stripped."""

    def text(value: Decimal, places: int) -> str:
        return f"{value:.{places}f}".replace(".", "").lstrip("0")

    parts = [text(p, price_places) + text(q, qty_places) for p, q in list(asks)[:DEPTH]]
    parts += [text(p, price_places) + text(q, qty_places) for p, q in list(bids)[:DEPTH]]
    return zlib.crc32("".join(parts).encode())


def _levels(raw: Any) -> list[Level]:
    return [(decimal_of(level["price"]), decimal_of(level["qty"])) for level in raw]


def truncated(book: SyncedBook, bids: list[Level], asks: list[Level]) -> tuple[list[Level], list[Level]]:
    """The levels that fall out of the top `DEPTH` once `bids`/`asks` are applied, as removals."""
    out = []
    for side, updates, best_first in ((book.bids, bids, True), (book.asks, asks, False)):
        levels = dict(side.levels)
        for price, qty in updates:
            if qty == 0:
                levels.pop(price, None)
            else:
                levels[price] = qty
        ranked = sorted(levels, reverse=best_first)
        out.append([(price, Decimal(0)) for price in ranked[DEPTH:]])
    return out[0], out[1]


class KrakenFeed:
    def ws_url(self, exchange: Any) -> str:
        url: str = exchange.urls["api"]["ws"]["publicV2"]
        return url

    def subscriptions(self, instruments: Sequence[Instrument]) -> list[dict[str, Any]]:
        symbols = [i.symbol for i in instruments]
        return [
            {"method": "subscribe", "params": {"channel": "book", "symbol": symbols, "depth": DEPTH}, "req_id": 1},
            {"method": "subscribe", "params": {"channel": "trade", "symbol": symbols, "snapshot": False}, "req_id": 2},
            {"method": "subscribe", "params": {"channel": "ticker", "symbol": symbols, "event_trigger": "bbo"}, "req_id": 3},
        ]  # fmt: skip

    def on_connected(self, session: FeedSession) -> None:
        return None

    def on_message(self, session: FeedSession, message: Any, receive_ns: int) -> None:
        if not isinstance(message, dict):
            return
        if message.get("method") == "subscribe" and message.get("success") is False:
            raise SubscriptionRefused(f"{session.venue}: subscription refused: {message.get('error')}")
        channel = message.get("channel")
        if channel not in ("book", "trade", "ticker"):
            return  # status, heartbeat, acknowledgements
        by_symbol = {i.symbol: i.id for i in session.instruments.values()}
        for data in message.get("data") or []:
            instrument = by_symbol.get(data.get("symbol"))
            if instrument is None:
                continue
            if channel == "book":
                self._book(session, instrument, message.get("type"), data, receive_ns)
            elif channel == "trade":
                session.record(instrument, receive_ns, lambda env, t=data, i=instrument: TradeTick(
                    envelope=env, venue=session.venue, instrument=i, price=decimal_of(t["price"]),
                    size=decimal_of(t["qty"]), aggressor_side=_SIDES[t["side"]], venue_trade_id=str(t["trade_id"]),
                    exchange_time_ns=_ns(t["timestamp"])))  # fmt: skip
            else:
                session.record(instrument, receive_ns, lambda env, t=data, i=instrument: QuoteTick(
                    envelope=env, venue=session.venue, instrument=i, bid_price=decimal_of(t["bid"]),
                    bid_size=decimal_of(t["bid_qty"]), ask_price=decimal_of(t["ask"]),
                    ask_size=decimal_of(t["ask_qty"])))  # fmt: skip

    def _book(self, session: FeedSession, instrument: str, kind: Any, data: Any, receive_ns: int) -> None:
        book = session.book(instrument)
        bids, asks = _levels(data.get("bids", [])), _levels(data.get("asks", []))
        if kind == "snapshot":
            if book.in_sync:
                session.resync(instrument, "new snapshot on a book in sync", receive_ns)
            last = book.applied_update_id + 1
            event = session.book_event(instrument, receive_ns, lambda env: BookSnapshot(
                envelope=env, venue=session.venue, instrument=instrument, last_update_id=last,
                bids=tuple(bids), asks=tuple(asks)))  # fmt: skip
        elif kind == "update":
            if not book.in_sync:
                return  # waiting for the snapshot of the resubscription
            gone_bids, gone_asks = truncated(book, bids, asks)
            update_id = book.applied_update_id + 1
            event = session.book_event(instrument, receive_ns, lambda env: BookDelta(
                envelope=env, venue=session.venue, instrument=instrument, first_update_id=update_id,
                final_update_id=update_id, bids=tuple(bids + gone_bids), asks=tuple(asks + gone_asks),
                exchange_time_ns=_ns(data["timestamp"]) if "timestamp" in data else None))  # fmt: skip
        else:
            session.refuse(f"book message of type {kind!r}")
            return
        if event is None or not book.in_sync:
            return
        market = session.instruments[instrument].market
        expected = data.get("checksum")
        got = checksum(book.bids.top(DEPTH), book.asks.top(DEPTH), _places(market["precision"]["price"]),
                       _places(market["precision"]["amount"]))  # fmt: skip
        if expected is not None and got != expected:
            session.resync(instrument, f"checksum {got} != Kraken's {expected}", receive_ns)
            self.resync(session, instrument)

    def resync(self, session: FeedSession, instrument_id: str) -> None:
        params = {"channel": "book", "symbol": [session.instruments[instrument_id].symbol], "depth": DEPTH}
        session.send([{"method": "unsubscribe", "params": params, "req_id": 91},
                      {"method": "subscribe", "params": params, "req_id": 92}])  # fmt: skip

    async def fetch_snapshot(self, exchange: Any, instrument_id: str) -> Any:
        raise NotImplementedError("Kraken resends its books on subscription")

    def on_snapshot(self, session: FeedSession, instrument_id: str, snapshot: Any, receive_ns: int) -> None:
        raise NotImplementedError("Kraken resends its books on subscription")
