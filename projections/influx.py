"""Time series into InfluxDB 1.x (production) or a SQLite table (embedded default), from the event log.

Exactly-once without transactions. InfluxDB cannot take part in the SQL transaction that records progress,
so the order of the two writes is what makes this correct:

    1. read the last offset of (projection, session, stream) from the SQL tracking table;
    2. read the next records from the log (offset > last), map them to points;
    3. write the points to InfluxDB in batches of `batch_points` and wait for every acknowledgement (HTTP 204);
    4. only then record the offset of the last record in the SQL tracking table.

A crash between 3 and 4 (or an acknowledgement lost on the way) means the next run writes the same points
again. That is harmless because the writes are idempotent: a point is identified by measurement + tag set +
timestamp, each derived only from the event (never from wall time or a counter), and InfluxDB overwrites a
point written again with the same series and timestamp. Recording the offset *before* the write would be the
unsafe order: a crash in between would skip points forever. So progress may lag what InfluxDB holds, never
lead it: at-least-once delivery + idempotent writes = exactly-once effect.

The database and its retention policy come from configuration (`InfluxConfig`, built by the composition root
from CSE_INFLUX_URL, CSE_INFLUX_DB, CSE_INFLUX_RP (default "cse"), CSE_INFLUX_RETENTION (default "30d"; "INF"
keeps forever));
`ensure_database` creates both (idempotent) and makes the policy the database's default. Points older than
the policy's duration are dropped by the server (it answers "partial write: points beyond retention policy
dropped"): that is the configured intent, not a failure, so such a batch counts as acknowledged.

Outages: an unreachable server or a 5xx answer (InfluxDB or the SQL tracking database) is retried with
capped exponential backoff without moving the offset; `cse_projection_lag_records` shows how far behind the
projection is. A 4xx answer other than the retention one (a bad point) is raised: it would fail forever.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import KeysView, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from application.ports import EventLog, StoredRecord
from projections.influx_http import InfluxError, InfluxHTTPClient, quote_ident
from projections.projector import (
    Backoff,
    ProjectionMetrics,
    TrackedProjection,
    dead_letter_row,
    read_batch,
    write_dead_letters,
    write_tracking,
)
from projections.timeseries import Point, batch_points


@dataclass(frozen=True)
class InfluxConfig:
    url: str = "http://127.0.0.1:8086"
    database: str = "cse"
    retention_policy: str = "cse"
    retention: str = "30d"
    """An InfluxQL duration ("30d", "52w", "INF")."""
    shard_duration: str | None = None
    batch_points: int = 20_000
    """Lines per HTTP write request."""
    max_in_flight: int = 3
    """Write requests in flight at once (the writes are idempotent, so their order does not matter)."""


class TransientInfluxError(Exception):
    """InfluxDB unreachable or answering 5xx/429: retry later."""

    transient = True


class PointSink(Protocol):
    async def write(self, points: Sequence[Point | str]) -> None:
        """Points, or line-protocol lines where the sink says `takes_lines = True`."""
        ...


async def ensure_database(client: InfluxHTTPClient, config: InfluxConfig) -> None:
    """CREATE DATABASE and its retention policy (DEFAULT) from the configuration; idempotent, and an existing
    policy is altered to the configured duration."""
    db, rp = quote_ident(config.database), quote_ident(config.retention_policy)
    await client.execute(f"CREATE DATABASE {db}")
    spec = f"DURATION {config.retention} REPLICATION 1"
    if config.shard_duration:
        spec += f" SHARD DURATION {config.shard_duration}"
    existing = await client.execute(f"SHOW RETENTION POLICIES ON {db}")
    names = {row["name"] for s in existing for row in s.rows()}
    if config.retention_policy in names:
        await client.execute(f"ALTER RETENTION POLICY {rp} ON {db} {spec} DEFAULT")
    else:
        await client.execute(f"CREATE RETENTION POLICY {rp} ON {db} {spec} DEFAULT")


class InfluxSink:
    """Writes points to InfluxDB in requests of `config.batch_points` lines. `write` returns once every request
    of the call is acknowledged; the projector calls it for up to `max_in_flight` batches concurrently."""

    takes_lines = True
    """The projector may hand over quotes as ready line-protocol lines (`timeseries.batch_points`)."""

    def __init__(self, client: InfluxHTTPClient, config: InfluxConfig) -> None:
        self.client = client
        self.config = config
        self.points_written = 0
        self.max_in_flight = max(1, config.max_in_flight)

    async def write(self, points: Sequence[Point | str]) -> None:
        size = self.config.batch_points
        for start in range(0, len(points), size):
            chunk = points[start : start + size]
            lines = [p if type(p) is str else p.line() for p in chunk]  # type: ignore[union-attr]
            try:
                await self.client.write(self.config.database, lines,
                                        retention_policy=self.config.retention_policy)  # fmt: skip
            except InfluxError as exc:
                if exc.status is None or exc.status >= 500 or exc.status == 429:
                    raise TransientInfluxError(str(exc)) from exc
                if exc.status == 400 and "beyond retention policy" in exc.body:
                    pass  # older than the configured retention: dropped by design, the rest was written
                else:
                    raise
            self.points_written += len(chunk)


@dataclass
class _InFlight:
    end: int
    """Offset of the batch's last record."""
    task: asyncio.Task[None] | None
    """The write (None: the batch had no points)."""
    keys: KeysView[Any]
    """(measurement, tags, time) of its points."""

    def done(self) -> bool:
        return self.task is None or self.task.done()


class TimeseriesProjector(TrackedProjection):
    """Projects a session's streams into a point sink (InfluxSink or timeseries_sqlite.SqlPointSink), with the
    progress in the SQL tracking table of `engine`, written after the sink acknowledged (see module doc)."""

    def __init__(
        self,
        engine: AsyncEngine,
        log: EventLog,
        sink: PointSink,
        *,
        name: str = "influx",
        batch_records: int = 20_000,
        quote_interval_ns: int = 0,
        backoff: Backoff = Backoff(),  # noqa: B008 - frozen
        metrics: ProjectionMetrics | None = None,
        tracking: Table | None = None,
    ) -> None:
        super().__init__(engine, log, name, metrics)
        self.sink = sink
        self.batch_records = batch_records
        self.quote_interval_ns = quote_interval_ns
        self.backoff = backoff
        self._tracking = tracking
        self._as_lines = bool(getattr(sink, "takes_lines", False))

    @property
    def tracking(self) -> Table:
        return self._tracking if self._tracking is not None else super().tracking

    async def _set_aside(self, rows: list[dict[str, Any]]) -> None:
        async with self.engine.begin() as conn:
            await write_dead_letters(conn, rows)

    async def project_stream(self, session_id: str, stream: str, *, max_batches: int | None = None) -> int:
        """Project the stream's records after the tracked offset; returns how many records were projected.

        Pipelined: while up to `sink.max_in_flight` batches are being written, the next one is read, mapped
        and sent. The tracking row only ever moves to the end of a batch once that batch and every batch
        before it are acknowledged (oldest first), so progress never leads what the sink holds. Two batches
        that write the same point (series + time: e.g. downsampled quotes of one interval across a batch
        boundary) are never in flight together: the later one waits, so the last value wins as in the log."""
        key = (session_id, stream)
        what = f"projection {self.name} {session_id}/{stream}"
        on_retry = self._on_retry(session_id, stream)
        last = await self.backoff.run(
            lambda: self.last_offset(session_id, stream), what=what, on_retry=on_retry
        )
        self._last_known[key] = last
        depth = max(1, int(getattr(self.sink, "max_in_flight", 1)))
        pending: deque[_InFlight] = deque()
        total = batches = 0
        next_from = last + 1
        try:
            while max_batches is None or batches < max_batches:
                records = [r for r in read_batch(self.log, session_id, stream, next_from, self.batch_records)
                           if r.offset >= next_from]  # fmt: skip
                if not records:
                    break
                undecodable: list[tuple[StoredRecord, str]] = []
                by_key = batch_points(records, session_id, quote_interval_ns=self.quote_interval_ns,
                                      as_lines=self._as_lines, undecodable=undecodable)  # fmt: skip
                if undecodable:  # set aside before the tracking row can move past them (idempotent)
                    dead = [dead_letter_row(self.name, session_id, stream, s, why) for s, why in undecodable]
                    await self.backoff.run(lambda rows=dead: self._set_aside(rows), what=what,  # type: ignore[misc]
                                           on_retry=on_retry)  # fmt: skip
                    self._count_dead_letters(dead)
                if any(not f.done() and not f.keys.isdisjoint(by_key) for f in pending):
                    while pending:  # the same point in an unacknowledged batch: keep the log's order
                        await self._settle(pending, session_id, stream, what, on_retry)
                while len(pending) >= depth:
                    await self._settle(pending, session_id, stream, what, on_retry)
                task = None
                if by_key:
                    points = list(by_key.values())
                    task = asyncio.create_task(self.backoff.run(lambda pts=points: self.sink.write(pts),  # type: ignore[misc]
                                                                what=what, on_retry=on_retry))  # fmt: skip
                pending.append(_InFlight(records[-1].offset, task, by_key.keys()))
                await asyncio.sleep(0)  # let the write start (encode and send) before reading the next batch
                next_from = records[-1].offset + 1
                total += len(records)
                batches += 1
            while pending:
                await self._settle(pending, session_id, stream, what, on_retry)
        except BaseException:
            for f in pending:
                if f.task is not None:
                    f.task.cancel()
            await asyncio.gather(*(f.task for f in pending if f.task is not None), return_exceptions=True)
            raise
        self._report_lag(session_id, stream)
        return total

    async def _settle(self, pending: deque[_InFlight], session_id: str, stream: str, what: str,
                      on_retry: Any) -> None:  # fmt: skip
        """Wait for the oldest in-flight batch, then record progress up to it (and any acknowledged batches
        right behind it) in one tracking update."""
        oldest = pending.popleft()
        if oldest.task is not None:
            await oldest.task
        end = oldest.end
        while pending and pending[0].done():
            head = pending.popleft()
            if head.task is not None:
                head.task.result()  # raises if that write failed
            end = head.end

        async def commit() -> None:
            async with self.engine.begin() as conn:
                await write_tracking(conn, self.tracking, self.name, session_id, stream, end)

        await self.backoff.run(commit, what=what, on_retry=on_retry)
        self._count_records(end - self._last_known.get((session_id, stream), -1))
        self._last_known[(session_id, stream)] = end
        self._report_lag(session_id, stream)

    async def project_session(self, session_id: str, streams: list[str] | None = None) -> int:
        total = 0
        for stream in streams if streams is not None else self.log.streams(session_id):
            total += await self.project_stream(session_id, stream)
        return total


async def project_to_influx(
    engine: AsyncEngine, log: EventLog, session_id: str, config: InfluxConfig, **kwargs: Any
) -> int:
    """Convenience: ensure the database and retention policy, then project the session's time series."""
    async with InfluxHTTPClient(config.url) as client:
        await Backoff(max_elapsed=60).run(lambda: _ensure(client, config), what="influx ensure_database")
        projector = TimeseriesProjector(engine, log, InfluxSink(client, config), **kwargs)
        return await projector.project_session(session_id)


async def _ensure(client: InfluxHTTPClient, config: InfluxConfig) -> None:
    try:
        await ensure_database(client, config)
    except InfluxError as exc:
        if exc.status is None or exc.status >= 500:
            raise TransientInfluxError(str(exc)) from exc
        raise
