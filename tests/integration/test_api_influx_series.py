"""The spread history of the server path: points projected into the real InfluxDB read back through
`InfluxSeries` (what `cse serve --target postgres` answers `series` with) equal the recorded opportunities."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

from adapters.sqlite_event_log import SqliteEventLog
from projections.influx import InfluxConfig, project_to_influx
from projections.influx_http import InfluxHTTPClient
from projections.schema import make_engine, migrate
from projections.series_queries import InfluxSeries
from projections.testing import build_sample_session

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SESSION = "api-influx"


async def test_spread_history_from_influxdb(tmp_path: Path) -> None:
    url = os.environ.get("CSE_INFLUX_URL", "http://127.0.0.1:8086")
    config = InfluxConfig(url=url, database=f"cse_api_{uuid.uuid4().hex[:10]}", retention_policy="cse_rp")
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'rm.sqlite'}")
    await migrate(engine)
    with SqliteEventLog(tmp_path / "events.sqlite") as log:
        # recent times: InfluxDB drops points older than the retention policy
        build_sample_session(log, SESSION, orders=30, start_ns=time.time_ns() - 3_600_000_000_000)
        await project_to_influx(engine, log, SESSION, config)
        recorded = sorted((e["envelope"]["event_time_ns"], e["buy_venue"], e["sell_venue"], e["net_edge_bps"])
                          for stream in log.streams(SESSION) for s in log.read(SESSION, stream)
                          if s.record.event_type == "signal.spread_opportunity"
                          for e in [json.loads(s.record.payload)])  # fmt: skip
    async with InfluxHTTPClient(url) as client:
        try:
            series = InfluxSeries(client, config)
            points = await series.series("spread", SESSION, {}, 500)
            last_two = await series.series("spread", SESSION, {"buy_venue": recorded[-1][1]}, 2)
        finally:
            await client.drop_database(config.database)
    await engine.dispose()
    got = [(p["time_ns"], p["tags"]["buy_venue"], p["tags"]["sell_venue"], str(p["fields"]["net_edge_bps"]))
           for p in points]  # fmt: skip
    assert recorded and [(t, b, s) for t, b, s, _ in got] == [(t, b, s) for t, b, s, _ in recorded]
    assert [float(g[3]) for g in got] == [float(r[3]) for r in recorded]
    assert last_two[-1]["time_ns"] == recorded[-1][0] and len(last_two) == 2
