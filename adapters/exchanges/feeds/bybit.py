"""Bybit v5 spot (ccxt `bybit`), per bybit-exchange.github.io/docs/v5/websocket/public/orderbook and /trade.

Websocket `.../v5/public/spot`, `{"op":"subscribe","args":[...]}` (at most 10 topics a request):
`orderbook.50.<id>` (book), `orderbook.1.<id>` (top of book), `publicTrade.<id>` (trades).
Book: a `snapshot` then `delta`s whose `u` grows by exactly 1; recorded as BookSnapshot(last_update_id=u) and
BookDelta(first = final = u), so `domain.book`'s contiguous-id rule checks them. A snapshot on a book that
was in sync (Bybit resends one after a service restart, with `u=1`, and says to reset the book) is preceded by
a BookResyncNeeded, so a replay takes it even when its id is lower. A gap: resync = resubscribe (a new
snapshot comes only with a new subscription). Trades: `S` is the taker's side = our aggressor side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.exchanges.feeds.base import FeedSession, Instrument, SubscriptionRefused
from domain.events import BookDelta, BookSnapshot, QuoteTick, TradeTick
from domain.values import Side

DEPTH = 50
TOPICS_PER_REQUEST = 10
_SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}


def _levels(raw: Any) -> tuple[tuple[Any, Any], ...]:
    return tuple((p, q) for p, q in raw)


class BybitFeed:
    def ws_url(self, exchange: Any) -> str:
        url: str = exchange.urls["api"]["ws"]["public"]["spot"]
        return exchange.implode_hostname(url)

    def subscriptions(self, instruments: Sequence[Instrument]) -> list[dict[str, Any]]:
        topics = [
            f"{kind}.{i.id}"
            for i in instruments
            for kind in (f"orderbook.{DEPTH}", "orderbook.1", "publicTrade")
        ]
        return [{"op": "subscribe", "args": topics[n : n + TOPICS_PER_REQUEST], "req_id": f"cse-{n}"}
                for n in range(0, len(topics), TOPICS_PER_REQUEST)]  # fmt: skip

    def on_connected(self, session: FeedSession) -> None:
        return None

    def on_message(self, session: FeedSession, message: Any, receive_ns: int) -> None:
        if not isinstance(message, dict):
            return
        if message.get("op") == "subscribe" and message.get("success") is False:
            raise SubscriptionRefused(f"{session.venue}: subscription refused: {message.get('ret_msg')}")
        topic = message.get("topic")
        if not isinstance(topic, str):
            return  # acknowledgements, pongs
        kind, _, instrument = topic.rpartition(".")
        if instrument not in session.instruments:
            return
        data = message.get("data")
        ts = message.get("ts")
        if kind == f"orderbook.{DEPTH}":
            self._book(session, instrument, message.get("type"), data, ts, receive_ns)
        elif kind == "orderbook.1":
            session.record(instrument, receive_ns, lambda env: QuoteTick(
                envelope=env, venue=session.venue, instrument=instrument, bid_price=data["b"][0][0],
                bid_size=data["b"][0][1], ask_price=data["a"][0][0], ask_size=data["a"][0][1],
                exchange_time_ns=int(ts) * 1_000_000))  # fmt: skip
        elif kind == "publicTrade":
            for trade in data:
                session.record(instrument, receive_ns, lambda env, t=trade: TradeTick(
                    envelope=env, venue=session.venue, instrument=instrument, price=t["p"], size=t["v"],
                    aggressor_side=_SIDES[t["S"]], venue_trade_id=str(t["i"]),
                    exchange_time_ns=int(t["T"]) * 1_000_000))  # fmt: skip

    def _book(
        self, session: FeedSession, instrument: str, kind: Any, data: Any, ts: Any, receive_ns: int
    ) -> None:
        if kind == "snapshot":
            book = session.book(instrument)
            if book.in_sync:
                session.resync(instrument, f"new snapshot u={data['u']} on a book in sync (u={book.applied_update_id})",
                               receive_ns)  # fmt: skip
            session.book_event(instrument, receive_ns, lambda env: BookSnapshot(
                envelope=env, venue=session.venue, instrument=instrument, last_update_id=data["u"],
                bids=_levels(data["b"]), asks=_levels(data["a"])))  # fmt: skip
        elif kind == "delta":
            session.book_event(instrument, receive_ns, lambda env: BookDelta(
                envelope=env, venue=session.venue, instrument=instrument, first_update_id=data["u"],
                final_update_id=data["u"], bids=_levels(data["b"]), asks=_levels(data["a"]),
                exchange_time_ns=int(ts) * 1_000_000))  # fmt: skip
        else:
            session.refuse(f"orderbook message of type {kind!r}")

    def resync(self, session: FeedSession, instrument_id: str) -> None:
        topic = f"orderbook.{DEPTH}.{instrument_id}"
        session.send([{"op": "unsubscribe", "args": [topic], "req_id": "cse-resync-off"},
                      {"op": "subscribe", "args": [topic], "req_id": "cse-resync-on"}])  # fmt: skip

    async def fetch_snapshot(self, exchange: Any, instrument_id: str) -> Any:
        raise NotImplementedError("Bybit resends its books on subscription")

    def on_snapshot(self, session: FeedSession, instrument_id: str, snapshot: Any, receive_ns: int) -> None:
        raise NotImplementedError("Bybit resends its books on subscription")
