"""Projection throughput on the local real servers (deploy/local/services.sh): PostgreSQL read models,
InfluxDB time series, and the rebuild of the read models from one million events.

    .venv/bin/python tests/bench/bench_projections.py [--rebuild-events 1000000] [--skip-rebuild]

Data: the shipped Binance captures (spot + USD-M BTCUSDT, 2024-08-08) imported with import_binance_ws into a
temporary SQLite log, plus a backtest session (application.backtest.run_backtest, deploy/samples/
spread-demo.toml) so that orders, fills, risk decisions and equity samples exist; the backtest session holds
its inputs too, so it is what a real session looks like (~136k records, ~1% with read-model handlers).
Because that session is almost all market data, the PostgreSQL figure is also given on the dense synthetic
session of projections.testing (about half the records are order/risk/signal/equity events).
Every run works in a fresh PostgreSQL schema / InfluxDB database and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from adapters.entrypoints.commands import load_run_config, simulated_venues  # noqa: E402
from adapters.importers.binance_ws import import_binance_ws  # noqa: E402
from adapters.sqlite_event_log import SqliteEventLog  # noqa: E402
from application.backtest import run_backtest  # noqa: E402
from application.session_run import RunParameters, market_data_streams  # noqa: E402
from projections.handlers import REGISTRY  # noqa: E402
from projections.influx import InfluxConfig, InfluxSink, TimeseriesProjector, ensure_database  # noqa: E402
from projections.influx_http import InfluxHTTPClient  # noqa: E402
from projections.projector import SqlProjector  # noqa: E402
from projections.rebuild import rebuild  # noqa: E402
from projections.schema import make_engine, migrate  # noqa: E402
from projections.testing import build_sample_session  # noqa: E402
from projections.timeseries import points_for_record  # noqa: E402

DATA = Path(os.environ.get("CSE_HFT_DATA", "/work/shared/data/hftbacktest"))
CONFIG = REPO / "deploy" / "samples" / "spread-demo.toml"
PAIR = [DATA / "spot" / "btcusdt_20240808.gz", DATA / "usdm" / "btcusdt_20240808.gz"]
PG_DSN = os.environ.get("CSE_PG_DSN", "postgresql+asyncpg://postgres@127.0.0.1:55432/cse")
INFLUX_URL = os.environ.get("CSE_INFLUX_URL", "http://127.0.0.1:8086")
IMPORTED, BACKTEST, DENSE, MILLION = "bench-imported", "bench-bt", "bench-dense", "bench-1m"


def build_real_session(log: SqliteEventLog) -> dict[str, Any]:
    started = time.perf_counter()
    imported = import_binance_ws(log, IMPORTED, PAIR, code_version=lambda: "bench", echo=None)
    config = load_run_config(CONFIG)
    result = run_backtest(log, RunParameters(IMPORTED, market_data_streams(log, IMPORTED), config), BACKTEST,
                          simulated_venues, "bench")  # fmt: skip
    return {"imported": imported.records, "derived": result.derived, "records": log.count(BACKTEST),
            "handled": _handled(log, BACKTEST), "seconds": time.perf_counter() - started}  # fmt: skip


def _handled(log: SqliteEventLog, session: str) -> int:
    return sum(
        1 for s in log.streams(session) for r in log.read(session, s) if r.record.event_type in REGISTRY
    )


class PgSchema:
    def __init__(self) -> None:
        self.schema = f"bench_{uuid.uuid4().hex[:10]}"
        self.engine: AsyncEngine | None = None

    async def __aenter__(self) -> AsyncEngine:
        self.engine = make_engine(PG_DSN, schema=self.schema)
        await migrate(self.engine, schema=self.schema)
        return self.engine

    async def __aexit__(self, *exc: object) -> None:
        assert self.engine is not None
        await self.engine.dispose()
        admin = make_engine(PG_DSN)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        await admin.dispose()


async def bench_postgres(log: SqliteEventLog, session: str) -> dict[str, Any]:
    async with PgSchema() as engine:
        started = time.perf_counter()
        records = await SqlProjector(engine, log).project_session(session)
        seconds = time.perf_counter() - started
    handled = _handled(log, session)
    return {"records": records, "handled": handled, "seconds": seconds, "records_per_s": records / seconds,
            "handled_per_s": handled / seconds}  # fmt: skip


async def bench_influx(log: SqliteEventLog, session: str) -> dict[str, Any]:
    config = InfluxConfig(url=INFLUX_URL, database=f"bench_{uuid.uuid4().hex[:10]}", retention="INF")
    out: dict[str, Any] = {"batch_points": config.batch_points, "max_in_flight": config.max_in_flight}
    async with PgSchema() as engine, InfluxHTTPClient(config.url, timeout=60) as client:
        await ensure_database(client, config)
        try:
            sink = InfluxSink(client, config)
            started = time.perf_counter()
            records = await TimeseriesProjector(engine, log, sink).project_session(session)
            seconds = time.perf_counter() - started
            out |= {"records": records, "points": sink.points_written, "seconds": seconds,
                    "points_per_s": sink.points_written / seconds}  # fmt: skip
            # The write path alone: the same points, already mapped, encoded and written by the sink with
            # `max_in_flight` requests in flight (what the projector does while it reads the next batch).
            points = [p for s in log.streams(session) for r in log.read(session, s)
                      for p in points_for_record(r.record, session)]  # fmt: skip
            sink2 = InfluxSink(client, config)
            size = config.batch_points
            chunks = [points[i : i + size] for i in range(0, len(points), size)]
            sem = asyncio.Semaphore(config.max_in_flight)

            async def one(chunk: list[Any]) -> None:
                async with sem:
                    await sink2.write(chunk)

            started = time.perf_counter()
            await asyncio.gather(*(one(c) for c in chunks))
            seconds = time.perf_counter() - started
            out |= {"sink_points_per_s": sink2.points_written / seconds}
        finally:
            await client.drop_database(config.database)
    return out


async def bench_rebuild(log: SqliteEventLog, events: int) -> dict[str, Any]:
    started = time.perf_counter()
    orders = max(1, round(events / 11.2))  # ~11.2 records per order in the sample session
    records = build_sample_session(log, MILLION, orders=orders, seed=11)
    built = time.perf_counter() - started
    async with PgSchema() as engine:
        started = time.perf_counter()
        applied = await rebuild(engine, log, MILLION)
        seconds = time.perf_counter() - started
    return {"records": records, "applied": applied, "handled": _handled(log, MILLION), "build_seconds": built,
            "seconds": seconds, "records_per_s": applied / seconds}  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild-events", type=int, default=1_000_000)
    parser.add_argument("--skip-rebuild", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cse-bench-proj-") as tmp, \
            SqliteEventLog(Path(tmp) / "events.sqlite") as log:  # fmt: skip
        real = build_real_session(log)
        print(f"session {BACKTEST}: {real['records']:,} records ({real['imported']:,} imported inputs, "
              f"{real['derived']:,} derived; {real['handled']:,} with read-model handlers), "
              f"built in {real['seconds']:.1f}s")  # fmt: skip
        pg = await bench_postgres(log, BACKTEST)
        print(f"PostgreSQL, real session: {pg['records']:,} records in {pg['seconds']:.2f}s = "
              f"{pg['records_per_s']:,.0f} records/s ({pg['handled_per_s']:,.0f} handled events/s)")  # fmt: skip
        build_sample_session(log, DENSE, orders=2800, quotes_per_order=6, seed=5)
        dense = await bench_postgres(log, DENSE)
        print(f"PostgreSQL, dense synthetic session: {dense['records']:,} records ({dense['handled']:,} handled) in "
              f"{dense['seconds']:.2f}s = {dense['records_per_s']:,.0f} records/s "
              f"({dense['handled_per_s']:,.0f} handled events/s)")  # fmt: skip
        ts = await bench_influx(log, BACKTEST)
        print(f"InfluxDB, real session: {ts['points']:,} points from {ts['records']:,} records in "
              f"{ts['seconds']:.2f}s = {ts['points_per_s']:,.0f} points/s end to end; write path alone "
              f"{ts['sink_points_per_s']:,.0f} points/s (batch {ts['batch_points']:,}, "
              f"{ts['max_in_flight']} in flight)")  # fmt: skip
        if not args.skip_rebuild:
            rb = await bench_rebuild(log, args.rebuild_events)
            print(f"rebuild: {rb['applied']:,} records ({rb['handled']:,} handled) rebuilt and swapped in "
                  f"{rb['seconds']:.1f}s = {rb['records_per_s']:,.0f} records/s "
                  f"(session built in {rb['build_seconds']:.1f}s)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
