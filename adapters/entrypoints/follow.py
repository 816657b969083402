"""`cse project --follow`: the projector as a long-running service.

Each pass takes what was appended to the log since the last one (Kafka: `streams.follow.TailLog` polls the
event topics; embedded: the SQLite log, re-read cheaply), projects every (session, stream) that grew into
the read models and the time series (exactly once, the projectors' tracking rows as always), and then lets
the tail forget what both projections committed. SIGTERM/SIGINT: the pass in hand finishes, the clients
close, exit 0. `/health` is 503 while no pass completed for `STALL_S` (the database is unreachable and the
projectors are backing off) and while stopping; `/metrics` has the projection lag, records, retries, dead
letters and the tail's consumer lag.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from adapters.entrypoints.bootstrap import influx_config, projection_metrics, read_models_url
from adapters.entrypoints.commands import code_version, open_log
from adapters.entrypoints.service import Service, service
from adapters.observability.logs import log_context
from adapters.observability.metrics import CONSUMER_LAG
from adapters.settings import Settings
from application.ports import EventLog
from projections.influx import InfluxSink, PointSink, TimeseriesProjector, ensure_database
from projections.influx_http import InfluxHTTPClient
from projections.projector import Backoff, SqlProjector, TrackedProjection, projection_order
from projections.schema import make_engine, migrate
from projections.timeseries_sqlite import SqlPointSink

log = logging.getLogger(__name__)
STALL_S = 120.0
LAG_EVERY_S = 5.0  # the tail's lag costs a watermark request per partition


async def follow(settings: Settings, args: argparse.Namespace) -> int:
    engine = make_engine(read_models_url(settings, args.target))
    last_pass = [time.monotonic()]
    checks = {"progressing": lambda: time.monotonic() - last_pass[0] < STALL_S}
    try:
        await migrate(engine)
        with service("projector", settings, code_version(), checks) as svc:
            stop = svc.install_signal_handlers(asyncio.get_running_loop())
            async with _log(settings, args) as (event_log, tail):
                async with _timeseries_sink(settings, args, engine) as sink:
                    metrics = projection_metrics()
                    projectors: list[TrackedProjection] = [SqlProjector(engine, event_log, metrics=metrics)]
                    if sink is not None:
                        projectors.append(TimeseriesProjector(engine, event_log, sink, metrics=metrics))
                    await _run(svc, stop, event_log, tail, projectors, args.poll_interval, last_pass)
    finally:
        await engine.dispose()
    return 0


async def _run(svc: Service, stop: asyncio.Event, event_log: EventLog, tail: Any,
               projectors: list[TrackedProjection], interval: float, last_pass: list[float]) -> None:  # fmt: skip
    lag_at = 0.0
    while not stop.is_set():
        if tail is not None:
            await asyncio.to_thread(tail.poll, 5_000, min(interval, 1.0))
        projected = 0
        for session in event_log.sessions():
            session_projected = projected
            for stream in projection_order(event_log.streams(session)):
                end = event_log.end_offset(session, stream)
                before = min(p.projected_through(session, stream) for p in projectors)
                for projector in projectors:
                    if projector.projected_through(session, stream) + 1 < end:
                        projected += await projector.project_stream(session, stream)
                if tail is not None:
                    through = min(p.projected_through(session, stream) for p in projectors)
                    if svc.tracing.enabled:
                        _trace_applied(svc, tail, session, stream, before, through)
                    tail.trim(session, stream, through)
            if projected > session_projected:
                with log_context(session_id=session):
                    log.info("projected %d records", projected - session_projected)
        if tail is not None and time.monotonic() - lag_at >= LAG_EVERY_S:
            lag_at = time.monotonic()
            for (topic, partition), lag in (await asyncio.to_thread(tail.lag)).items():
                CONSUMER_LAG.labels(tail.group, topic, str(partition)).set(lag)
        last_pass[0] = time.monotonic()
        if tail is None or not projected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval if tail is None else 0.05)


def _trace_applied(svc: Service, tail: Any, session: str, stream: str, before: int, through: int) -> None:
    """One span per record now in the read models and time series, in the trace of its message."""
    for offset in range(before + 1, through + 1):
        traceparent = tail.traceparent(session, stream, offset)
        if traceparent is not None:
            attributes = {"cse.session": session, "cse.stream": stream, "cse.offset": offset}
            with svc.tracing.consume("projector.apply", {"traceparent": traceparent}, attributes):
                pass


@contextlib.asynccontextmanager
async def _log(settings: Settings, args: argparse.Namespace) -> AsyncIterator[tuple[EventLog, Any]]:
    if args.source != "kafka":
        with open_log(settings) as sqlite_log:
            yield sqlite_log, None
        return
    from streams.follow import TailLog
    from streams.topics import Topics

    tail = await asyncio.to_thread(
        TailLog, settings.kafka_bootstrap, Topics(args.prefix or settings.topic_prefix)
    )
    try:
        yield tail, tail
    finally:
        tail.close()


@contextlib.asynccontextmanager
async def _timeseries_sink(
    settings: Settings, args: argparse.Namespace, engine: Any
) -> AsyncIterator[PointSink | None]:
    if args.no_timeseries:
        yield None
    elif args.target == "postgres":
        config = influx_config(settings)
        async with InfluxHTTPClient(config.url) as client:
            await Backoff(max_elapsed=60).run(
                lambda: ensure_database(client, config), what="influx ensure_database"
            )
            yield InfluxSink(client, config)
    else:
        yield SqlPointSink(engine)
