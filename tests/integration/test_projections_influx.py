"""Time series into the real InfluxDB (deploy/local/influxdb.sh): points written and read back, idempotent
rewrite, retention policy from configuration, retry through an outage. Each test uses its own database,
dropped afterwards; progress is tracked in a temp SQLite read-model database. Fails (never skips) when
InfluxDB is unreachable."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.entrypoints.bootstrap import projection_metrics
from adapters.observability.metrics import PROJECTION_LAG as LAG
from adapters.settings import Settings
from adapters.sqlite_event_log import SqliteEventLog
from projections.influx import (
    InfluxConfig,
    InfluxSink,
    TimeseriesProjector,
    TransientInfluxError,
    ensure_database,
)
from projections.influx_http import InfluxHTTPClient
from projections.models import Base
from projections.projector import Backoff
from projections.schema import make_engine, migrate
from projections.testing import build_sample_session
from projections.timeseries import Point

pytestmark = pytest.mark.integration

SESSION = "bt-influx"
START_NS = (time.time_ns() // 1_000_000_000 - 3600) * 1_000_000_000  # an hour ago: inside any retention


@pytest.fixture
async def influx() -> AsyncIterator[tuple[InfluxHTTPClient, InfluxConfig]]:
    url = Settings().influx_url
    config = InfluxConfig(url=url, database=f"cse_test_{uuid.uuid4().hex[:10]}", retention_policy="cse_rp",
                          retention="7d", batch_points=5000)  # fmt: skip
    client = InfluxHTTPClient(url)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        pytest.fail(f"InfluxDB at {url} unreachable ({exc!r}); run `bash deploy/local/services.sh start`")
    await ensure_database(client, config)
    yield client, config
    await client.drop_database(config.database)
    await client.aclose()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'read.sqlite'}"
    await migrate(url)
    eng = make_engine(url)
    yield eng
    await eng.dispose()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SqliteEventLog]:
    with SqliteEventLog(tmp_path / "events.sqlite") as event_log:
        build_sample_session(event_log, SESSION, orders=150, start_ns=START_NS)
        yield event_log


async def _count(client: InfluxHTTPClient, db: str, measurement: str, where: str = "") -> int:
    series = await client.query(db, f'SELECT count(*) FROM "{measurement}" {where}')
    if not series:
        return 0
    row = series[0].rows()[0]
    return max(v for k, v in row.items() if k.startswith("count_"))


async def _snapshot(client: InfluxHTTPClient, db: str) -> dict[str, list[list[object]]]:
    out = {}
    for m in ("mid", "spread", "signals", "fills", "equity"):
        series = await client.query(db, f'SELECT * FROM "{m}" ORDER BY time')
        out[m] = series[0].values if series else []
    return out


async def test_points_written_and_read_back(
    influx: tuple[InfluxHTTPClient, InfluxConfig], engine: AsyncEngine, log: SqliteEventLog
) -> None:
    client, config = influx
    projector = TimeseriesProjector(engine, log, InfluxSink(client, config), batch_records=400)
    assert await projector.project_session(SESSION) == log.count(SESSION)
    db = config.database
    for venue in ("binance", "okx"):
        stream = log.read(SESSION, f"md.{venue}.BTCUSDT")  # opens with the instrument's definition
        quotes = sum(1 for stored in stream if stored.record.event_type == "market.quote")
        assert await _count(client, db, "mid", f"WHERE venue = '{venue}' AND session = '{SESSION}'") == quotes
    derived = [r.record for r in log.read(SESSION, "derived")]
    trades = {r.payload for r in derived if r.event_type in ("order.filled", "order.partially_filled")}
    assert trades
    assert await _count(client, db, "fills") == len(trades) - 1  # one fill is a duplicate report
    assert await _count(client, db, "equity") == sum(
        r.event_type == "portfolio.equity_sampled" for r in derived
    )
    signals = sum(r.event_type == "signal.spread_opportunity" for r in derived)
    assert await _count(client, db, "signals") == signals
    # Values survive the trip: the first quote's mid.
    first = next(r for r in log.read(SESSION, "md.binance.BTCUSDT") if r.record.event_type == "market.quote")
    series = await client.query(
        db, f"SELECT mid FROM mid WHERE venue = 'binance' AND time = {first.record.event_time_ns}"
    )
    from domain.events import decode

    q = decode(first.record.payload)
    assert series[0].values[0][1] == pytest.approx(float((q.bid_price + q.ask_price) / 2))
    assert series[0].values[0][0] == first.record.event_time_ns
    for stream in log.streams(SESSION):
        assert await projector.last_offset(SESSION, stream) == log.end_offset(SESSION, stream) - 1


async def test_rewrite_is_idempotent(
    influx: tuple[InfluxHTTPClient, InfluxConfig], engine: AsyncEngine, log: SqliteEventLog
) -> None:
    client, config = influx
    await TimeseriesProjector(engine, log, InfluxSink(client, config)).project_session(SESSION)
    before = await _snapshot(client, config.database)
    # Lose the progress (a crash after InfluxDB acknowledged, before the tracking row was written): redo all.
    async with engine.begin() as conn:
        await conn.execute(Base.metadata.tables["projection_tracking"].delete())
    await TimeseriesProjector(engine, log, InfluxSink(client, config), batch_records=333).project_session(
        SESSION
    )
    assert await _snapshot(client, config.database) == before


async def test_retention_policy_from_configuration(influx: tuple[InfluxHTTPClient, InfluxConfig]) -> None:
    client, config = influx
    rows = [
        r for s in await client.execute(f'SHOW RETENTION POLICIES ON "{config.database}"') for r in s.rows()
    ]
    rp = next(r for r in rows if r["name"] == config.retention_policy)
    assert rp["duration"] == "168h0m0s" and rp["default"] is True
    # Re-running with another duration alters the policy in place.
    await ensure_database(
        client,
        InfluxConfig(
            url=config.url,
            database=config.database,
            retention_policy=config.retention_policy,
            retention="14d",
        ),
    )
    rows = [
        r for s in await client.execute(f'SHOW RETENTION POLICIES ON "{config.database}"') for r in s.rows()
    ]
    assert next(r for r in rows if r["name"] == config.retention_policy)["duration"] == "336h0m0s"


async def test_outage_backs_off_reports_lag_and_catches_up(
    influx: tuple[InfluxHTTPClient, InfluxConfig], engine: AsyncEngine, log: SqliteEventLog
) -> None:
    client, config = influx
    real = InfluxSink(client, config)
    lags: list[float] = []

    class FlakySink:
        """The real sink, behind a link that is down for the first 4 writes."""

        failures = 4

        async def write(self, points: Sequence[Point]) -> None:
            if self.failures > 0:
                self.failures -= 1
                lags.append(LAG.labels("influx-outage", "derived")._value.get())
                raise TransientInfluxError("connection refused")
            await real.write(points)

    projector = TimeseriesProjector(engine, log, FlakySink(), name="influx-outage", batch_records=200,
                                    backoff=Backoff(initial=0.01, cap=0.05), metrics=projection_metrics())  # fmt: skip
    await projector.project_session(SESSION, ["derived"])
    assert projector.retries == 4
    assert lags[-1] > 0
    assert LAG.labels("influx-outage", "derived")._value.get() == 0
    assert await _count(client, config.database, "equity") > 0


async def test_throughput_points(influx: tuple[InfluxHTTPClient, InfluxConfig], engine: AsyncEngine,
                                 tmp_path: Path) -> None:  # fmt: skip
    client, config = influx
    with SqliteEventLog(tmp_path / "big.sqlite") as big:
        build_sample_session(big, "big", orders=2800, quotes_per_order=6, seed=5, start_ns=START_NS)
        sink = InfluxSink(client, config)
        started = time.perf_counter()
        await TimeseriesProjector(engine, big, sink).project_session("big")
        elapsed = time.perf_counter() - started
    print(
        f"\nInfluxDB projection: {sink.points_written} points in {elapsed:.2f}s: "
        f"{sink.points_written / elapsed:,.0f} points/s"
    )
    assert sink.points_written >= 30_000
