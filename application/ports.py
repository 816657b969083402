"""Ports: what the application needs from the outside world, implemented in adapters/, projections/, streams/.

Records cross the event-log port as canonical JSON bytes plus the few fields a log must index on, so the
same port fits SQLite (embedded default) and Kafka (production) without either knowing the event catalogue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol, runtime_checkable

from domain.events import EventBase


class LogRecord(NamedTuple):
    """One event as stored: `stream` is the ordered stream it belongs to (e.g. `md.binance-spot.BTCUSDT`),
    `key` the partitioning key, `payload` the canonical JSON of the event. A named tuple, not a frozen
    dataclass: every record read builds one, and a tuple is built ~2.5x faster."""

    stream: str
    key: str
    event_type: str
    event_time_ns: int
    payload: bytes


class StoredRecord(NamedTuple):
    """A record with the position the log gave it. Offsets are per stream and start at 0."""

    offset: int
    record: LogRecord


class EventLog(Protocol):
    """Append-only, ordered per stream, durable once `append` returns (the acknowledgement)."""

    def append(self, session_id: str, records: Sequence[LogRecord]) -> list[int]:
        """Append a batch atomically; returns the offsets given, in order. All or nothing."""
        ...

    def read(self, session_id: str, stream: str, from_offset: int = 0) -> Iterator[StoredRecord]:
        """Records of one stream in offset order, streamed (never loads a whole session)."""
        ...

    def streams(self, session_id: str) -> list[str]:
        """Names of the streams of a session, sorted."""
        ...

    def sessions(self) -> list[str]:
        """Session ids, sorted."""
        ...

    def end_offset(self, session_id: str, stream: str) -> int:
        """The offset the next appended record of the stream will get."""
        ...


@runtime_checkable
class ColumnarMarketData(Protocol):
    """An event log whose market-data streams may live in columnar files (`adapters.columnar`): how a run
    reads its inputs without a JSON round trip, and where a compiled market core finds the raw columns."""

    def market_data(self, session_id: str) -> Any | None:
        """What names the session's market data (`.sha256`, `.codec`, `.streams`); None: all in the log."""
        ...

    def input_events(
        self, session_id: str, stream: str, as_session: str, from_offset: int = 0
    ) -> Iterator[EventBase] | None:
        """The events of a columnar stream in stream order, with the ids of `as_session` (a pure function of
        (session, stream, sequence)); None when the stream is stored as log records."""
        ...

    def market_columns(self, session_id: str) -> tuple[Any, list[str]] | None:
        """(pyarrow Table in engine order, stream names of its `stream` column), None without columnar data."""
        ...

    def attach_market_data(self, session_id: str, sha256: str, streams: Sequence[str], codec: str = ...) -> None:
        """Name the file `sha256`'s `streams` as the session's market data (a backtest: no copy)."""
        ...

    def verify_market_data(self, session_id: str) -> None:
        """Re-hash the session's file in full; raise (a ValueError naming file and hashes) if it changed."""
        ...


class Clock(Protocol):
    """Engine time in integer nanoseconds UTC. Simulated in backtests (driven by event time), wall in live."""

    def now_ns(self) -> int: ...


class Venue(Protocol):
    """Where order commands go and order events come from: the simulated venue or a live exchange adapter.

    `on_market` lets a simulated venue match against recorded data; a live venue ignores it.
    Returned events are already stamped with the time the engine learns of them (the local clock; when they
    happened at the venue is in the order events' `exchange_time_ns`); a live venue reports asynchronously
    via `drain`."""

    name: str

    def submit(self, command: EventBase) -> list[EventBase]: ...

    def on_market(self, event: EventBase) -> list[EventBase]: ...

    def drain(self, until_ns: int) -> list[EventBase]: ...

    def counters(self) -> Mapping[str, Any]:
        """What the run's report should show of how the venue worked (e.g. a simulated venue's fallbacks
        to the exchange's top of book); JSON-ready, deterministic."""
        ...


class EventFeed(Protocol):
    """A live feed of events (what GraphQL subscriptions and the live recorder consume)."""

    def subscribe(self, event_types: Iterable[str] | None = None) -> AsyncIterator[EventBase]: ...


class Tracer(Protocol):
    """Spans across processes: each hop continues the trace of the message it handles (W3C `traceparent`
    in the message headers). Implemented in `adapters/observability/tracing.py`; a no-op when tracing is off."""

    enabled: bool

    def consume(self, name: str, headers: Mapping[str, bytes], attributes: Mapping[str, Any] | None = None
                ) -> AbstractContextManager[Any]:  # fmt: skip
        """A span continuing the trace of `headers` (current until the block ends)."""
        ...

    def traceparent(self) -> str | None:
        """`traceparent` of the current span for the messages it sends; None when off or not sampled."""
        ...
