"""The recorder: live market data from ccxt.pro websockets into a session of the event log.

One `ExchangeRecorder` per exchange: loads its markets (the InstrumentDefined of each recorded symbol, at the
session's start), opens one websocket with ccxt.pro's client, subscribes through its venue feed
(`feeds/`), and takes every raw message before ccxt's own handlers see it (ccxt checks no sequence numbers and
hides raw deltas): the client's message handler is replaced by one that stamps the receive time and queues the
message. One task per exchange consumes the queue in order, so the events of an exchange are recorded in the
order received. Book events go through `domain.book.SyncedBook` (the one copy of the sequence rules): a gap
records a `BookResyncNeeded` (and counts `cse_recorder_sequence_gaps_total`), the book waits, and the venue's
resync brings a new snapshot (Binance: REST; Bybit, Kraken: the book resubscribed on the same connection;
Coinbase, whose sequence numbers cover the whole connection: a new connection).

Failures: a dropped or silent websocket (ccxt's keep-alive), a REST timeout, HTTP 429 or 5xx are network
errors: every book in sync gets a `BookResyncNeeded` ("reconnect"), and the exchange reconnects after an
exponential backoff (0.5 s doubling to 30 s, reset by a connection that delivers; counted in
`cse_recorder_reconnects_total`). REST calls go through ccxt's rate limiter; snapshot refetches of one book
are at least `SNAPSHOT_MIN_INTERVAL_S` apart. A refused subscription or an unknown symbol stops the recorder
with a clear error. On stop (SIGINT/SIGTERM), what was received is recorded and flushed before the command
returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ccxt

from adapters.exchanges.errors import describe
from adapters.exchanges.factory import create_exchange, exchange_spec
from adapters.exchanges.feeds.base import Builder, Instrument, Resubscribe, VenueFeed
from adapters.exchanges.feeds.binance import BinanceFeed
from adapters.exchanges.feeds.bybit import BybitFeed
from adapters.exchanges.feeds.coinbase import CoinbaseFeed
from adapters.exchanges.feeds.kraken import KrakenFeed
from adapters.exchanges.market_definitions import with_published_fees
from adapters.exchanges.record_log import FLUSH_INTERVAL_S, RecordLog
from adapters.importers.common import ROW_ERRORS
from adapters.instruments.catalog import InstrumentCatalog, load_catalog
from adapters.observability.metrics import RECORDER_MESSAGES, RECORDER_RECONNECTS, RECORDER_SEQUENCE_GAPS
from domain.book import SyncedBook, SyncStatus
from domain.events import BookDelta, BookResyncNeeded, BookSnapshot, EventBase

log = logging.getLogger(__name__)

NETWORK_ERRORS: tuple[type[BaseException], ...] = (ccxt.NetworkError, ConnectionError, OSError, TimeoutError)
"""ccxt's NetworkError covers timeouts, HTTP 429 (RateLimitExceeded, DDoSProtection) and 5xx
(ExchangeNotAvailable); ccxt's own websocket errors are NetworkErrors too."""
SNAPSHOT_MIN_INTERVAL_S = 1.0
CONNECT_TIMEOUT_S = 15.0
_WATCH_HASH = "cse.recorder"


class RecorderError(Exception):
    """The recorder cannot go on (markets unavailable, unknown symbol); the message says why."""


def feed_for(exchange_id: str) -> VenueFeed:
    feeds: dict[str, Callable[[], VenueFeed]] = {
        "binance": lambda: BinanceFeed("spot"),
        "binanceusdm": lambda: BinanceFeed("usdm"),
        "binancecoinm": lambda: BinanceFeed("coinm"),
        "bybit": BybitFeed,
        "kraken": KrakenFeed,
        "coinbase": CoinbaseFeed,
    }
    return feeds[exchange_spec(exchange_id).exchange_id]()


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.max_s, self.initial_s * 2 ** min(attempt, 16))


@dataclass
class _Closed:
    error: BaseException


@dataclass
class _Snapshot:
    instrument_id: str
    raw: Any
    receive_ns: int


_STOP = object()


@dataclass
class ExchangeRecorder:
    exchange_id: str
    symbols: Sequence[str]
    out: RecordLog
    api_base: str | None = None
    credentials: Mapping[str, str] | None = None
    rate_limit: bool = True
    backoff: Backoff = field(default_factory=Backoff)
    timeout_ms: int = 10_000
    clock: Callable[[], int] = time.time_ns
    catalog: InstrumentCatalog = field(default_factory=load_catalog)
    """Published fee schedules (specs.toml) preferred to ccxt's built-in fee defaults."""
    silence_timeout_s: float = 60.0
    """A connection that delivers nothing for this long is dropped and reconnected (a feed can go quiet while
    websocket pings still get their pongs)."""

    def __post_init__(self) -> None:
        self.venue = exchange_spec(self.exchange_id).venue
        self.feed = feed_for(self.exchange_id)
        self.exchange: Any = None
        self.instruments: dict[str, Instrument] = {}
        self.books: dict[str, SyncedBook] = {}
        self.messages = 0
        self.reconnects = 0
        self.gaps = 0
        self.refused = 0
        """Messages not of the venue's documented shape (logged; a lost book message then shows as a gap)."""
        self.connected = False
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._last_fetch: dict[str, float] = {}
        self._client: Any = None
        self._sending: set[asyncio.Future[None]] = set()

    # -- start ----------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the client and load the markets (retrying network errors with backoff)."""
        self.exchange = create_exchange(self.exchange_id, websocket=True, api_base=self.api_base,
                                        credentials=self.credentials, rate_limit=self.rate_limit)  # fmt: skip
        self.exchange.timeout = self.timeout_ms
        self.exchange.handle_message = self._tap
        for attempt in range(6):
            try:
                markets = await self.exchange.load_markets()
                break
            except NETWORK_ERRORS as exc:
                if attempt == 5:
                    raise RecorderError(f"{self.exchange_id}: cannot load its markets: {describe(exc)}") from exc
                log.warning("%s: load_markets failed (%s), retrying", self.exchange_id, exc)
                await asyncio.sleep(self.backoff.delay(attempt))
        for symbol in self.symbols:
            market = _market_of(markets, symbol)
            if market is None:
                raise RecorderError(f"{self.exchange_id} has no market {symbol!r} (it has e.g. "
                                    f"{', '.join(sorted(markets)[:5])})")  # fmt: skip
            self.instruments[market["id"]] = Instrument(market["symbol"], market["id"], market)
            self.books[market["id"]] = SyncedBook(self.venue, market["id"])

    def define_instruments(self, time_ns: int) -> None:
        for instrument in self.instruments.values():
            definition = with_published_fees(instrument.market, self.venue, self.catalog)
            if not self.out.define(self.venue, instrument.id, definition, time_ns):
                # the stream's book (in a replay) is as of the last recording: it must take our next snapshot
                self._write_resync(instrument.id, "recording resumed", time_ns, 0, 0)

    async def close(self) -> None:
        if self.exchange is not None:
            await self.exchange.close()

    # -- the connection loop --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            received_before = self.messages
            try:
                await self._connection(stop)
                return
            except Resubscribe as why:
                log.info("%s: resubscribing (%s)", self.exchange_id, why)
            except NETWORK_ERRORS as exc:
                if self.messages > received_before:
                    attempt = 0
                self.reconnects += 1
                RECORDER_RECONNECTS.labels(self.venue).inc()
                self._lose_books(f"disconnected: {describe(exc)}")
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning("%s: %s; reconnecting in %.1f s", self.exchange_id, exc, delay)
                await _sleep_unless(stop, delay)
            finally:
                await self._disconnect()

    async def _connection(self, stop: asyncio.Event) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queue = queue
        url = self.feed.ws_url(self.exchange)
        subscriptions = self.feed.subscriptions(list(self.instruments.values()))
        watched = self.exchange.watch(url, _WATCH_HASH, subscriptions[0], _WATCH_HASH)
        watched.add_done_callback(lambda f: queue.put_nowait(_Closed(
            ConnectionError("the websocket subscription was cancelled") if f.cancelled()
            else f.exception() or ConnectionError("closed"))))  # fmt: skip
        client = self._client = self.exchange.client(url)
        await asyncio.wait_for(asyncio.shield(client.connected), CONNECT_TIMEOUT_S)
        for message in subscriptions[1:]:
            await client.send(message)
        self.connected = True
        self.feed.on_connected(self)
        stopper = asyncio.ensure_future(stop.wait())
        stopper.add_done_callback(lambda _: queue.put_nowait(_STOP))
        last_flush = time.monotonic()
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), self.silence_timeout_s)
                except TimeoutError:
                    raise ConnectionError(f"no message for {self.silence_timeout_s:.0f} s") from None
                if item is _STOP:
                    self._drain(queue)
                    return
                try:
                    self._handle(item)
                except Resubscribe:
                    self._drain(queue)  # what this connection already delivered is recorded before it closes
                    raise
                if time.monotonic() - last_flush >= FLUSH_INTERVAL_S:
                    self.out.flush()
                    last_flush = time.monotonic()
        finally:
            stopper.cancel()
            self.connected = False

    def _drain(self, queue: asyncio.Queue[Any]) -> None:
        """Record what the connection delivered before it ends (a stop, a resubscription); a book that loses
        sync meanwhile is resynced by the next connection anyway."""
        while not queue.empty():
            item = queue.get_nowait()
            if isinstance(item, tuple | _Snapshot):
                with contextlib.suppress(Resubscribe):
                    self._handle(item)

    def _handle(self, item: Any) -> None:
        if isinstance(item, _Closed):
            raise item.error
        if isinstance(item, _Snapshot):
            self.feed.on_snapshot(self, item.instrument_id, item.raw, item.receive_ns)
            return
        receive_ns, message = item
        try:
            self.feed.on_message(self, message, receive_ns)
        except ROW_ERRORS as exc:  # a message not of the documented shape: counted, never fatal
            self.refuse(f"{type(exc).__name__}: {exc} in {str(message)[:200]}")

    def _tap(self, client: Any, message: Any) -> None:
        """ccxt's message handler, replaced: stamp, count and queue the raw message (any message is a sign of
        life for ccxt's keep-alive)."""
        client.lastPong = self.exchange.milliseconds()
        self.messages += 1
        RECORDER_MESSAGES.labels(self.venue).inc()
        self._queue.put_nowait((self.clock(), message))

    async def _disconnect(self) -> None:
        for task in [*self._fetching.values(), *self._sending]:
            task.cancel()
        self._fetching.clear()
        self._sending.clear()
        clients = dict(self.exchange.clients or {})
        for url, client in clients.items():
            await client.close()
            self.exchange.clients.pop(url, None)

    def _lose_books(self, reason: str) -> None:
        now = self.clock()
        for instrument_id, book in sorted(self.books.items()):
            if book.in_sync:
                self._record_resync(instrument_id, reason, now, gap=False)

    # -- FeedSession ----------------------------------------------------------------------------------------

    def record(self, instrument_id: str, receive_ns: int, build: Builder) -> EventBase | None:
        return self.out.add(self.venue, instrument_id, receive_ns, build)

    def book(self, instrument_id: str) -> SyncedBook:
        return self.books[instrument_id]

    def book_event(self, instrument_id: str, receive_ns: int, build: Builder) -> EventBase | None:
        event = self.out.add(self.venue, instrument_id, receive_ns, build)
        if not isinstance(event, BookSnapshot | BookDelta):
            return event
        outcome = self.books[instrument_id].apply(event)
        if outcome.status is SyncStatus.OUT_OF_SYNC:
            self._count_gap(instrument_id)
            self._write_resync(instrument_id, outcome.reason, receive_ns, outcome.expected_update_id,
                               outcome.received_update_id)  # fmt: skip
            self.feed.resync(self, instrument_id)
        return event

    def resync(self, instrument_id: str, reason: str, receive_ns: int) -> None:
        self._record_resync(instrument_id, reason, receive_ns, gap=True)

    def refuse(self, detail: str) -> None:
        self.refused += 1
        log.warning("%s: message refused: %s", self.exchange_id, detail)

    def send(self, messages: list[dict[str, Any]]) -> None:
        client, queue = self._client, self._queue

        async def send_in_order() -> None:
            try:
                for message in messages:
                    await client.send(message)
            except Exception as exc:  # the connection is failing: it reconnects
                queue.put_nowait(_Closed(ConnectionError(f"sending {message}: {exc}")))

        self._sending.add(asyncio.ensure_future(send_in_order()))
        self._sending = {task for task in self._sending if not task.done()}

    def fetch_later(self, instrument_id: str) -> None:
        if instrument_id in self._fetching:
            return
        self._fetching[instrument_id] = asyncio.ensure_future(self._fetch(instrument_id, self._queue))

    async def _fetch(self, instrument_id: str, queue: asyncio.Queue[Any]) -> None:
        try:
            attempt = 0
            while True:
                wait = self._last_fetch.get(instrument_id, -1e9) + SNAPSHOT_MIN_INTERVAL_S - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._last_fetch[instrument_id] = time.monotonic()
                try:
                    raw = await self.feed.fetch_snapshot(self.exchange, instrument_id)
                except NETWORK_ERRORS as exc:
                    delay = self.backoff.delay(attempt)
                    attempt += 1
                    log.warning("%s %s: snapshot failed (%s), again in %.1f s", self.exchange_id, instrument_id,
                                exc, delay)  # fmt: skip
                    await asyncio.sleep(delay)
                    continue
                queue.put_nowait(_Snapshot(instrument_id, raw, self.clock()))
                return
        except Exception as exc:  # not a network error: the connection fails with it, never a silent stop
            queue.put_nowait(_Closed(exc))
        finally:
            if self._fetching.get(instrument_id) is asyncio.current_task():
                del self._fetching[instrument_id]

    def _count_gap(self, instrument_id: str) -> None:
        self.gaps += 1
        RECORDER_SEQUENCE_GAPS.labels(self.venue, instrument_id).inc()

    def _record_resync(self, instrument_id: str, reason: str, receive_ns: int, *, gap: bool) -> None:
        book = self.books[instrument_id]
        if gap:
            self._count_gap(instrument_id)
        self._write_resync(instrument_id, reason, receive_ns, book.applied_update_id + 1, 0)
        book.mark_out_of_sync()

    def _write_resync(
        self, instrument_id: str, reason: str, receive_ns: int, expected: int, received: int
    ) -> None:
        log.warning("%s %s: book resync: %s", self.exchange_id, instrument_id, reason)
        event = self.out.add(self.venue, instrument_id, receive_ns, lambda env: BookResyncNeeded(
            envelope=env, venue=self.venue, instrument=instrument_id, expected_update_id=expected,
            received_first_update_id=received, reason=reason))  # fmt: skip
        assert event is not None


def _market_of(markets: Mapping[str, Any], symbol: str) -> Any:
    """The market of a unified symbol; `BTC/USDT` also names the USD-M perpetual `BTC/USDT:USDT`."""
    if symbol in markets:
        return markets[symbol]
    swaps = [m for m in markets.values() if m["symbol"].split(":")[0] == symbol and m.get("swap")]
    return swaps[0] if len(swaps) == 1 else None


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


@dataclass
class RecordSummary:
    session_id: str
    records: int
    messages: dict[str, int]
    reconnects: dict[str, int]
    gaps: dict[str, int]


async def record_exchanges(recorders: Sequence[ExchangeRecorder], out: RecordLog, stop: asyncio.Event,
                           clock: Callable[[], int] = time.time_ns) -> RecordSummary:  # fmt: skip
    """Open every exchange, write the session start and the instrument definitions, then record until `stop`."""
    try:
        for recorder in recorders:
            await recorder.open()
        started = clock()
        out.start(started)
        for recorder in recorders:
            recorder.define_instruments(started)
        out.flush()
        flusher = asyncio.ensure_future(_flush_every(out, stop))
        try:
            await asyncio.gather(*(r.run(stop) for r in recorders))
        finally:
            flusher.cancel()
            out.flush()
    finally:
        for recorder in recorders:
            await recorder.close()
    return RecordSummary(out.session_id, out.records, {r.exchange_id: r.messages for r in recorders},
                         {r.exchange_id: r.reconnects for r in recorders}, {r.exchange_id: r.gaps for r in recorders})  # fmt: skip


async def _flush_every(out: RecordLog, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await _sleep_unless(stop, FLUSH_INTERVAL_S)
        out.flush()
