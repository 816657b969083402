"""`cse project`: run the projectors from the embedded log into the read models and time series."""

from __future__ import annotations

import argparse
import asyncio

from adapters.entrypoints.commands import UserError, open_log
from adapters.settings import Settings
from projections.influx import TimeseriesProjector, project_to_influx
from projections.projector import project
from projections.rebuild import rebuild
from projections.schema import make_engine, migrate
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
    p.set_defaults(handler=project_command)


def project_command(args: argparse.Namespace) -> int:
    return asyncio.run(_project(Settings(), args))


async def _project(settings: Settings, args: argparse.Namespace) -> int:
    if args.target == "postgres":
        url = settings.pg_dsn
    else:
        settings.home.mkdir(parents=True, exist_ok=True)
        url = f"sqlite+aiosqlite:///{settings.home / 'read_models.sqlite'}"
    engine = make_engine(url)
    try:
        await migrate(engine)
        with open_log(settings) as log:
            known = log.sessions()
            sessions = args.session or known
            unknown = [s for s in sessions if s not in known]
            if unknown:
                raise UserError(f"no session(s) {unknown} in {settings.event_log_path}")
            if args.rebuild:
                for session in sessions:
                    count = await rebuild(engine, log, session)
                    print(f"rebuilt {args.rebuild} of {session} from {count} records and swapped it in")
                return 0
            for session in sessions:
                count = await project(engine, log, session)
                print(f"read models: {session}: {count} new records projected into {engine.url.render_as_string()}")
                if args.no_timeseries:
                    continue
                if args.target == "postgres":
                    points = await project_to_influx(engine, log, session)
                    print(f"time series: {session}: {points} records projected into {settings.influx_url}")
                else:
                    points = await TimeseriesProjector(engine, log, SqlPointSink(engine)).project_session(session)
                    print(f"time series: {session}: {points} records projected into SQLite")
    finally:
        await engine.dispose()
    return 0
