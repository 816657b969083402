"""What every venue feed implements (`VenueFeed`) and what it calls back (`FeedSession`, the recorder's
connection): record an event, fold a book event into the book (the sequence rules of `domain.book`), ask
for a resync."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from domain.book import SyncedBook
from domain.events import Envelope, EventBase

Builder = Callable[[Envelope], EventBase]


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    """ccxt's unified symbol (BTC/USDT, BTC/USDT:USDT)."""
    id: str
    """The exchange's market id, our instrument name (BTCUSDT, XBTUSDT)."""
    market: dict[str, Any]


class SubscriptionRefused(Exception):
    """The exchange refused a subscription (an unknown symbol, a bad topic): retrying cannot help."""


class Resubscribe(Exception):
    """The connection's data cannot be trusted (Coinbase's sequence gap): reconnect now (no backoff)."""


class FeedSession(Protocol):
    venue: str
    exchange: Any
    instruments: dict[str, Instrument]
    """By exchange market id."""

    def record(self, instrument_id: str, receive_ns: int, build: Builder) -> EventBase | None:
        """Append a quote or trade."""

    def book_event(self, instrument_id: str, receive_ns: int, build: Builder) -> EventBase | None:
        """Append a snapshot or delta and fold it into the book; a gap records a resync and calls the
        feed's `resync`. None if the message was refused."""

    def book(self, instrument_id: str) -> SyncedBook: ...

    def resync(self, instrument_id: str, reason: str, receive_ns: int) -> None:
        """Record a BookResyncNeeded: the book is out of sync until the next snapshot (getting one is the
        feed's `resync`, which `book_event` calls on a gap)."""

    def refuse(self, detail: str) -> None:
        """Count and log a message that makes no event."""

    def send(self, messages: list[dict[str, Any]]) -> None:
        """Send messages on the open websocket, in order, in the background (e.g. resubscribe one book)."""

    def fetch_later(self, instrument_id: str) -> None:
        """Fetch a REST snapshot of the book (Binance), in the background, rate limited."""


class VenueFeed(Protocol):
    def ws_url(self, exchange: Any) -> str: ...

    def subscriptions(self, instruments: Sequence[Instrument]) -> list[dict[str, Any]]:
        """The messages that subscribe to every stream of `instruments` (sent in order on connect)."""

    def on_connected(self, session: FeedSession) -> None:
        """After the subscriptions went out (Binance asks for its REST snapshots here)."""

    def on_message(self, session: FeedSession, message: Any, receive_ns: int) -> None:
        """One raw message as received (parsed JSON)."""

    def resync(self, session: FeedSession, instrument_id: str) -> None:
        """Get a new snapshot of a book that lost sync (REST, resubscribing it on the same connection, or
        raise `Resubscribe` for a new connection)."""

    async def fetch_snapshot(self, exchange: Any, instrument_id: str) -> Any:
        """The REST snapshot of one book, raw (only feeds that call `fetch_later`)."""

    def on_snapshot(self, session: FeedSession, instrument_id: str, snapshot: Any, receive_ns: int) -> None:
        """A REST snapshot fetched by `fetch_snapshot`."""
