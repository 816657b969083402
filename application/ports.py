"""Ports: what the application needs from the outside world, implemented in adapters/, projections/, streams/.

Records cross the event-log port as canonical JSON bytes plus the few fields a log must index on, so the
same port fits SQLite (embedded default) and Kafka (production) without either knowing the event catalogue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol, runtime_checkable

from domain.events import EventBase
from domain.market_view import MarketView
from domain.wake import WakeSpec


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

    def input_columns(self, session_id: str, streams: Sequence[str], as_session: str) -> InputColumns | None:
        """The inputs of a run over `streams` of `session_id` as columns, in the file's row order, stamped for
        `as_session`, when they are exactly the streams of the session's columnar file; else None."""
        ...

    def attach_market_data(self, session_id: str, sha256: str, streams: Sequence[str], codec: str = ...) -> None:
        """Name the file `sha256`'s `streams` as the session's market data (a backtest: no copy)."""
        ...

    def verify_market_data(self, session_id: str) -> None:
        """Re-hash the session's file in full; raise (a ValueError naming file and hashes) if it changed."""
        ...


@runtime_checkable
class InputColumns(Protocol):
    """A run's inputs as the rows of a columnar market-data file, in run order: a compiled market core runs
    them without an event per message; only the messages that reach Python become events."""

    def __len__(self) -> int:
        """Messages (inputs)."""
        ...

    def runs(self) -> Iterator[tuple[str, int]]:
        """(stream, count) of consecutive inputs of one stream, in run order (what the merge order records)."""
        ...

    def time_at(self, index: int) -> int:
        """Event time of the `index`-th input."""
        ...

    def non_market_events(self) -> Iterator[tuple[str, EventBase]]:
        """The inputs that are not market rows (each stream's `InstrumentDefined`, ...), in run order."""
        ...

    def events(self) -> Iterator[tuple[str, EventBase]]:
        """Every input as (stream, event), in run order (a core that runs events, not columns)."""
        ...


class Clock(Protocol):
    """Engine time in integer nanoseconds UTC. Simulated in backtests (driven by event time), wall in live."""

    def now_ns(self) -> int: ...


class Venue(Protocol):
    """Where order commands go and order events come from: the simulated venue or a live exchange adapter.

    `on_market` lets a simulated venue match against recorded data; a live venue only notes its own recorded
    reports there. Returned events are already stamped with the time the engine learns of them (the local
    clock; when they happened at the venue is in the order events' `exchange_time_ns`). A live venue's
    reports are not derived: they are inputs of the session (recorded, so a replay reads them back), fed by
    the trading loop, and its `drain` releases nothing (`adapters/exchanges/live_venue.py`)."""

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


class MarketState(MarketView, Protocol):
    """A market view the kernel folds events into: each input exactly once (after the venues' `on_market`,
    before the input's own cascade) and each derived `BookResyncNeeded` (its book goes out of sync); other
    events are ignored."""

    def apply(self, event: EventBase) -> None: ...


class MarketCore(Protocol):
    """The market side of a run: runs the session's market rows, keeps the market view, and returns to Python
    only at rows where some decider or venue could act (`domain.wake`). Implemented by the pure-Python
    reference (`application.fast_run.ReferenceMarketCore`) and by the compiled core (`cse_core`).

    Owners. Specs are kept per owner index: the kernel's deciders 0..n-1 in kernel order, then its venues
    n..n+m-1 in venue-name order (`Kernel.owners`). Every owner starts with `domain.wake.ALWAYS`.

    The loop (`application.fast_run.run_gated`):
        while (event := core.next_wake()) is not None:
            kernel.feed(event)                  # the full cascade; the kernel calls core.view.apply(event)
            for owner, spec in kernel.wake_specs(): core.set_wake(owner, spec)
        kernel.skip_to(core.last_time_ns()); kernel.release_due(...)

    Row semantics of `next_wake`, for each row r from the current position, in recorded order:
      1. r not a market row (`domain.wake.row_kind` is None): return r, unapplied.
      2. evaluate every owner's spec on r against the view *before* r (`domain.wake.evaluate`; the compiled
         core may be looser, never stricter). If one is true: return r, unapplied: the kernel applies it to
         the view at the right point of its cascade (after the venues' `on_market`, before the input's own
         cascade) through `view.apply`.
      3. otherwise r is *skipped*: applied to the view, to the market state of the venue it
         belongs to (the reference calls `Venue.observe(r)`), counted in `skipped`, and the run goes on.
    It returns None after the last row. The returned event is the exact event of the row (`decode` of its
    stored payload, re-stamped into the target session as `application.session_run.restamp` does): ids,
    amounts with their exponents, optional fields.
    """

    @property
    def view(self) -> MarketState:
        """The market view the deciders read (`domain.market_view`), owned by the core; the kernel folds the
        returned rows and Python-derived `BookResyncNeeded` into it (`MarketState.apply`)."""
        ...

    def next_wake(self) -> EventBase | None:
        """Run rows until one must reach Python (see the class docstring); None at the end of the rows."""
        ...

    def set_wake(self, owner: int, spec: WakeSpec) -> None:
        """Replace an owner's spec; it holds until replaced."""
        ...

    @property
    def skipped(self) -> int:
        """Market rows run without returning to Python so far."""
        ...

    @property
    def last_time_ns(self) -> int:
        """Event time of the last row run (skipped or returned); -1 before the first."""
        ...
