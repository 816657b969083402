"""`cse project`: run the projectors from the event log (embedded SQLite, or the Kafka topics with
`--source kafka`) into the read models and time series.

From Kafka the records keep the (session, stream, offset) positions carried in their headers, so progress goes
to the same tracking table per (projection, session, stream) and the exactly-once rules are unchanged: a
session projected from the embedded log and then from Kafka (or the other way round) is not applied twice."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Iterator

from adapters.entrypoints.bootstrap import influx_config, read_models_url
from adapters.entrypoints.commands import UserError, open_log
from adapters.settings import Settings
from application.ports import EventLog
from projections.influx import TimeseriesProjector, project_to_influx
from projections.projector import project
from projections.rebuild import rebuild
from projections.schema import make_engine, migrate
from projections.sources import SnapshotLog
from projections.timeseries_sqlite import SqlPointSink

READ_MODELS = "read_models"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("project", help="project sessions of the log into read models (and time series)")
    p.add_argument("--session", action="append", help="session to project (repeatable; default: all)")
    p.add_argument("--target", choices=["embedded", "postgres"], default="embedded",
                   help="embedded: SQLite in $CSE_HOME with time series in SQLite; postgres: $CSE_PG_DSN + InfluxDB")  # fmt: skip
    p.add_argument("--rebuild", metavar="NAME", choices=[READ_MODELS],
                   help="rebuild this read model set from the log into fresh tables and swap it in")  # fmt: skip
    p.add_argument("--no-timeseries", action="store_true", help="skip the time series")
    p.add_argument("--source", choices=["embedded", "kafka"], default="embedded",
                   help="embedded: the SQLite log in $CSE_HOME; kafka: the topics at $CSE_KAFKA_BOOTSTRAP")  # fmt: skip
    p.add_argument(
        "--prefix", help="topic name prefix with --source kafka (default: $CSE_TOPIC_PREFIX or cse)"
    )
    p.add_argument("--follow", action="store_true",
                   help="keep projecting what is appended to the log, as a service with /metrics and /health, "
                        "until SIGTERM")  # fmt: skip
    p.add_argument("--poll-interval", type=float, default=1.0, metavar="SECONDS",
                   help="with --follow: longest wait for new records between passes (default 1)")  # fmt: skip
    p.set_defaults(handler=project_command)


def project_command(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    if args.follow:
        if args.rebuild:
            raise UserError("--follow projects as the log grows; --rebuild is a one-off: run it on its own")
        if args.poll_interval <= 0:
            raise UserError(f"--poll-interval must be a positive number of seconds, not {args.poll_interval}")
        from adapters.entrypoints.follow import follow

        return asyncio.run(follow(settings, args))
    return asyncio.run(_project(settings, args))


async def _project(settings: Settings, args: argparse.Namespace) -> int:
    engine = make_engine(read_models_url(settings, args.target))
    try:
        await migrate(engine)
        with _source(settings, args) as (log, where):
            known = log.sessions()
            sessions = args.session or known
            unknown = [s for s in sessions if s not in known]
            if unknown:
                raise UserError(f"no session(s) {unknown} in {where}")
            if args.rebuild:
                for session in sessions:
                    count = await rebuild(engine, log, session)
                    print(f"rebuilt {args.rebuild} of {session} from {count} records and swapped it in")
                return 0
            for session in sessions:
                count = await project(engine, log, session)
                print(
                    f"read models: {session}: {count} new records projected into {engine.url.render_as_string()}"
                )
                if args.no_timeseries:
                    continue
                if args.target == "postgres":
                    points = await project_to_influx(engine, log, session, influx_config(settings))
                    print(f"time series: {session}: {points} records projected into {settings.influx_url}")
                else:
                    points = await TimeseriesProjector(engine, log, SqlPointSink(engine)).project_session(
                        session
                    )
                    print(f"time series: {session}: {points} records projected into SQLite")
    finally:
        await engine.dispose()
    return 0


@contextlib.contextmanager
def _source(settings: Settings, args: argparse.Namespace) -> Iterator[tuple[EventLog, str]]:
    if getattr(args, "source", "embedded") != "kafka":
        with open_log(settings) as log:
            yield log, str(settings.event_log_path)
        return
    from streams.kafka_event_log import KafkaEventLog
    from streams.topics import Topics

    topics = Topics(getattr(args, "prefix", None) or settings.topic_prefix)
    kafka = KafkaEventLog(settings.kafka_bootstrap, topics)
    try:
        # each stream is read from the topics once and projected batch by batch from memory
        yield SnapshotLog(kafka), f"Kafka topics {topics.prefix}.* at {settings.kafka_bootstrap}"
    finally:
        kafka.close()
