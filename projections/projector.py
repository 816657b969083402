"""Exactly-once projection of the event log into the SQL read models.

Per (projection, session, stream) a row of `projection_tracking` holds the last applied log offset. A batch
is one database transaction:

    BEGIN; SELECT last_offset ... FOR UPDATE (PostgreSQL: a second projector on the same stream waits);
    read up to `batch_size` records from last_offset + 1; decode; apply the handlers (projections.handlers);
    upsert the changed rows; UPDATE tracking SET last_offset = <offset of the last record>; COMMIT

so rows and progress commit together or not at all: a crash (or a handler raising) mid-batch rolls back both
and the restart resumes after the last committed offset. A record at or below the tracked offset is never
applied again (redelivery changes nothing), and the handlers are idempotent on natural ids on top of that.
The starting offset is always re-read inside the transaction, never kept in memory, so a COMMIT whose
acknowledgement was lost (server died after committing) is not applied twice after reconnecting.

Streams of a session are independent (each its own tracking row), so they can be projected in any order or
concurrently by several workers.

Outages: a transient error (connection refused or reset, server shutting down or starting up, SQLite busy)
makes the projector back off exponentially (capped) and retry the same batch, forever by default; it never
skips a record. Meanwhile `cse_projection_lag_records{projection,stream}` reports how many records
the projection is behind the log's end offset, and it falls back to 0 once the server returns and the
projector catches up. A record the projection cannot decode (malformed bytes, an unknown or newer event
type: a foreign producer or a newer build wrote it) is set aside in `projection_dead_letters` with the
reason and its original bytes, in the same transaction that moves the tracking row past it, and counted in
`cse_projection_dead_letters_total`; the projection goes on. Nothing is lost: the record stays in the log
and in the dead letters, and a rebuild after the fix (`cse project --rebuild`) applies it. Any other error
(a bug in a handler) is raised: skipping it would silently corrupt the read model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Table, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from application.ports import EventLog, StoredRecord
from application.session_run import MARKET_DATA_PREFIX
from domain.events import EventBase, EventDecodeError, decode
from projections import handlers as default_handlers
from projections.batch import Batch, upsert_statement
from projections.models import DEAD_LETTER_TABLE, READ_MODEL_TABLES, TRACKING_TABLE, Base

log = logging.getLogger(__name__)
T = TypeVar("T")


def projection_order(streams: Iterable[str]) -> list[str]:
    """Market-data streams first, so every instrument's definition is in before a fill needs it."""
    return sorted(streams, key=lambda name: not name.startswith(MARKET_DATA_PREFIX))


def stream_kind(stream: str) -> str:
    """`md.binance-spot.BTCUSDT` -> `md`, `derived` -> `derived`: the lag gauge's bounded label."""
    return stream.split(".", 1)[0]


class Labelled(Protocol):
    """A metric family in Prometheus' shape: `labels(...)` gives the child to `set`/`inc`."""

    def labels(self, *values: str) -> Any: ...


@dataclass(frozen=True)
class ProjectionMetrics:
    """Where a projection reports progress; the composition root passes the Prometheus metrics of
    `adapters/observability/metrics.py` (lag by projection and stream kind, dead letters, records and retries
    by projection). None (the default): nothing reported."""

    lag: Labelled
    dead_letters: Labelled
    records: Labelled | None = None
    retries: Labelled | None = None


# -- retry --------------------------------------------------------------------------------------------------

_TRANSIENT_NAMES = {
    # asyncpg
    "PostgresConnectionError", "ConnectionDoesNotExistError", "ConnectionFailureError", "CannotConnectNowError",
    "AdminShutdownError", "CrashShutdownError", "TooManyConnectionsError", "InterfaceError",
    "ConnectionRejectionError", "InternalClientError", "ServerNotReadyError",
    "InvalidCachedStatementError", "OutdatedSchemaCacheError",  # a rebuild swapped a table under a cached plan
    # httpx (InfluxDB)
    "ConnectError", "ReadError", "WriteError", "RemoteProtocolError", "ConnectTimeout", "ReadTimeout",
    "WriteTimeout", "PoolTimeout", "NetworkError", "TimeoutException",
}  # fmt: skip


def is_transient(exc: BaseException) -> bool:
    """True for errors that a retry after a pause can cure (the server is down, restarting or busy)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError | OSError):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        name = type(current).__name__
        if name in _TRANSIENT_NAMES:
            return True
        if name == "OperationalError" and ("locked" in str(current) or "busy" in str(current)):
            return True
        if getattr(current, "transient", False):  # e.g. an InfluxDB 5xx, flagged by the client
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return False


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: initial, initial*factor, ... capped at `cap` seconds; `max_elapsed` None = forever."""

    initial: float = 0.05
    factor: float = 2.0
    cap: float = 5.0
    max_elapsed: float | None = None

    async def run(
        self,
        op: Callable[[], Awaitable[T]],
        *,
        what: str,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> T:
        delay = self.initial
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return await op()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                if self.max_elapsed is not None and time.monotonic() - started > self.max_elapsed:
                    raise
                if on_retry is not None:
                    on_retry(exc)
                log.warning("%s failed (attempt %d, retrying in %.2fs): %s", what, attempt, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * self.factor, self.cap)


# -- tracking -----------------------------------------------------------------------------------------------


async def read_tracking(conn: AsyncConnection, tracking: Table, projection: str, session_id: str, stream: str,
                        *, for_update: bool = False) -> int:  # fmt: skip
    """Last applied offset, -1 if nothing was applied yet."""
    stmt = select(tracking.c.last_offset).where(
        tracking.c.projection == projection, tracking.c.session_id == session_id, tracking.c.stream == stream
    )
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    value = (await conn.execute(stmt)).scalar_one_or_none()
    return -1 if value is None else int(value)


async def write_tracking(conn: AsyncConnection, tracking: Table, projection: str, session_id: str, stream: str,
                         last_offset: int) -> None:  # fmt: skip
    await conn.execute(
        upsert_statement(tracking, conn.dialect.name),
        [
            {
                "projection": projection,
                "session_id": session_id,
                "stream": stream,
                "last_offset": last_offset,
                "updated_ns": time.time_ns(),
            }
        ],  # fmt: skip
    )


def dead_letter_row(projection: str, session_id: str, stream: str, stored: StoredRecord,
                    reason: str) -> dict[str, Any]:  # fmt: skip
    return {"projection": projection, "session_id": session_id, "stream": stream, "offset": stored.offset,
            "event_type": stored.record.event_type[:200], "reason": reason, "payload": stored.record.payload,
            "recorded_ns": time.time_ns()}  # fmt: skip


async def write_dead_letters(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Upsert on the record's log position: writing the same dead letter again changes nothing."""
    await conn.execute(upsert_statement(Base.metadata.tables[DEAD_LETTER_TABLE], conn.dialect.name), rows)


def read_batch(
    log_: EventLog, session_id: str, stream: str, from_offset: int, limit: int
) -> list[StoredRecord]:
    out: list[StoredRecord] = []
    if limit <= 0:
        return out
    for stored in log_.read(session_id, stream, from_offset):
        out.append(stored)
        if len(out) >= limit:
            break
    return out


def live_tables() -> dict[str, Table]:
    return {name: Base.metadata.tables[name] for name in (*READ_MODEL_TABLES, TRACKING_TABLE)}


# -- the projector ------------------------------------------------------------------------------------------

Prefetch = Callable[[Batch, list[EventBase]], Awaitable[None]]


class TrackedProjection:
    """What every projection keeps per (session, stream): the tracked offset in the SQL tracking table, the
    lag behind the log (also as the `cse_projection_lag_records` gauge), retries and dead letters."""

    def __init__(
        self, engine: AsyncEngine, log: EventLog, name: str, metrics: ProjectionMetrics | None
    ) -> None:
        self.engine = engine
        self.log = log
        self.name = name
        self.metrics = metrics
        self._last_known: dict[tuple[str, str], int] = {}
        self._lags: dict[tuple[str, str], int] = {}
        self.retries = 0
        self.dead_letters = 0

    @property
    def tracking(self) -> Table:
        return Base.metadata.tables[TRACKING_TABLE]

    async def last_offset(self, session_id: str, stream: str) -> int:
        async with self.engine.connect() as conn:
            return await read_tracking(conn, self.tracking, self.name, session_id, stream)

    def projected_through(self, session_id: str, stream: str) -> int:
        """The last offset this projection committed, as last seen (-1: none yet, or not looked up)."""
        return self._last_known.get((session_id, stream), -1)

    def lag(self, session_id: str, stream: str) -> int:
        """Records behind the log's end, as of the last committed batch (or the last known position)."""
        return max(0, self.log.end_offset(session_id, stream) - (self.projected_through(session_id, stream) + 1))

    def _report_lag(self, session_id: str, stream: str) -> None:
        """The gauge sums the lag of every session's streams of one kind (`md`, `derived`, ...): sessions
        come and go, a label per session would grow without bound."""
        if self.metrics is None:
            return
        kind = stream_kind(stream)
        self._lags[(session_id, stream)] = self.lag(session_id, stream)
        total = sum(lag for (_, s), lag in self._lags.items() if stream_kind(s) == kind)
        self.metrics.lag.labels(self.name, kind).set(total)

    def _count_records(self, count: int) -> None:
        if self.metrics is not None and self.metrics.records is not None and count:
            self.metrics.records.labels(self.name).inc(count)

    def _on_retry(self, session_id: str, stream: str) -> Callable[[BaseException], None]:
        def note(_: BaseException) -> None:
            self.retries += 1
            if self.metrics is not None and self.metrics.retries is not None:
                self.metrics.retries.labels(self.name).inc()
            self._report_lag(session_id, stream)

        return note

    def _count_dead_letters(self, rows: list[dict[str, Any]]) -> None:
        """After the dead letters are durable: the counter, the metric and one error line each."""
        self.dead_letters += len(rows)
        if self.metrics is not None:
            self.metrics.dead_letters.labels(self.name).inc(len(rows))
        for row in rows:
            log.error("projection %s set aside %s/%s offset %d (%s): %s", self.name, row["session_id"],
                      row["stream"], row["offset"], row["event_type"], row["reason"])  # fmt: skip


class SqlProjector(TrackedProjection):
    """Projects a session's streams from an EventLog into the read models on `engine` (SQLite or PostgreSQL).

    `tables` maps logical table names (models.READ_MODEL_TABLES + 'projection_tracking') to the tables to
    write; the rebuild passes fresh `*__rebuild` copies. `registry` maps event types to handlers."""

    def __init__(
        self,
        engine: AsyncEngine,
        log: EventLog,
        *,
        name: str = "read_models",
        batch_size: int = 5000,
        tables: Mapping[str, Table] | None = None,
        registry: Mapping[str, Callable[..., Awaitable[None]]] | None = None,
        prefetch: Prefetch | None = default_handlers.prefetch,
        backoff: Backoff = Backoff(),  # noqa: B008 - frozen
        metrics: ProjectionMetrics | None = None,
    ) -> None:
        super().__init__(engine, log, name, metrics)
        self.batch_size = batch_size
        self.tables = dict(tables) if tables is not None else live_tables()
        self.registry = dict(registry) if registry is not None else dict(default_handlers.REGISTRY)
        self.prefetch = prefetch
        self.backoff = backoff
        self.batches_committed = 0

    @property
    def tracking(self) -> Table:
        return self.tables[TRACKING_TABLE]

    async def _batch(self, session_id: str, stream: str) -> int:
        """One transaction: returns how many records it applied (0: caught up)."""
        async with self.engine.begin() as conn:
            last = await read_tracking(conn, self.tracking, self.name, session_id, stream, for_update=True)
            self._last_known[(session_id, stream)] = last
            records = read_batch(self.log, session_id, stream, last + 1, self.batch_size)
            records = [r for r in records if r.offset > last]  # a redelivered record is never applied twice
            if not records:
                return 0
            batch = Batch(conn, self.tables, session_id, stream)
            events: list[tuple[StoredRecord, Any]] = []
            dead: list[dict[str, Any]] = []
            for stored in records:
                handler = self.registry.get(stored.record.event_type)
                if handler is not None:
                    try:
                        events.append((stored, decode(stored.record.payload)))
                    except EventDecodeError as exc:
                        dead.append(dead_letter_row(self.name, session_id, stream, stored, str(exc)))
            if self.prefetch is not None and events:
                await self.prefetch(batch, [e for _, e in events])
            for stored, event in events:
                await self.registry[event.type](batch, event, stored)
            await batch.flush()
            if dead:
                await write_dead_letters(conn, dead)
            await write_tracking(conn, self.tracking, self.name, session_id, stream, records[-1].offset)
        self._last_known[(session_id, stream)] = records[-1].offset
        self.batches_committed += 1
        if dead:
            self._count_dead_letters(dead)
        return len(records)

    async def project_stream(self, session_id: str, stream: str, *, max_batches: int | None = None) -> int:
        """Apply every record of the stream after the tracked offset; returns how many were applied."""
        total = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            n = await self.backoff.run(
                lambda: self._batch(session_id, stream),
                what=f"projection {self.name} {session_id}/{stream}",
                on_retry=self._on_retry(session_id, stream),
            )
            self._report_lag(session_id, stream)
            if n == 0:
                break
            self._count_records(n)
            total += n
            batches += 1
        return total

    async def project_session(self, session_id: str, streams: list[str] | None = None) -> int:
        """Every stream of the session, one after the other (each stream has its own tracking row); the
        market-data streams first, so every instrument's definition is in before a fill needs it."""
        total = 0
        chosen = streams if streams is not None else self.log.streams(session_id)
        for stream in projection_order(chosen):
            total += await self.project_stream(session_id, stream)
        return total

    async def follow(self, session_id: str, stop: asyncio.Event, *, poll_interval: float = 0.5) -> None:
        """Keep projecting new records of the session (live mode) until `stop` is set."""
        while not stop.is_set():
            applied = await self.project_session(session_id)
            if applied == 0:
                try:
                    await asyncio.wait_for(stop.wait(), poll_interval)
                except TimeoutError:
                    pass


async def project(engine: AsyncEngine, log: EventLog, session_id: str, **kwargs: Any) -> int:
    """Convenience: project one session into the live read models."""
    return await SqlProjector(engine, log, **kwargs).project_session(session_id)
