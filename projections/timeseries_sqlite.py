"""The embedded default of projections.influx: the same points in the `ts_points` table (SQLite, or any SQL
database of the read models), with InfluxDB's overwrite semantics: the key is (measurement, tag set, time),
and writing a point again replaces its fields (an upsert). Used with `TimeseriesProjector` exactly like
`InfluxSink`; progress goes to the same tracking table under its own projection name."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from projections.batch import upsert_statement
from projections.models import TIMESERIES_TABLE, Base
from projections.timeseries import Point

_CHUNK = 5000


class SqlPointSink:
    def __init__(self, engine: AsyncEngine, table: Table | None = None) -> None:
        self.engine = engine
        self.table = table if table is not None else Base.metadata.tables[TIMESERIES_TABLE]
        self.points_written = 0

    async def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        async with self.engine.begin() as conn:
            stmt = upsert_statement(self.table, conn.dialect.name)
            for start in range(0, len(points), _CHUNK):
                chunk = points[start : start + _CHUNK]
                await conn.execute(
                    stmt,
                    [
                        {
                            "measurement": p.measurement,
                            "tags": p.tag_string(),
                            "time_ns": p.time_ns,
                            "fields": p.fields_json(),
                        }
                        for p in chunk
                    ],
                )
        self.points_written += len(points)

    async def query(self, measurement: str, tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Rows of one measurement (optionally only series whose tags include `tags`), in time order."""
        t = self.table
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(t).where(t.c.measurement == measurement)
                                       .order_by(t.c.time_ns, t.c.tags))).all()  # fmt: skip
        out = []
        for r in rows:
            tag_map = dict(kv.split("=", 1) for kv in r.tags.split(",")) if r.tags else {}
            if tags and any(tag_map.get(k) != v for k, v in tags.items()):
                continue
            out.append({"time_ns": r.time_ns, "tags": tag_map, "fields": json.loads(r.fields)})
        return out
