"""`application.read_queries.SeriesQueries`: the time series the projectors write, read back.

`SqlSeries` reads the embedded `ts_points` table, `InfluxSeries` InfluxDB (server path). Both answer with
{time_ns, tags, fields} rows, oldest first, the last `last` points of the session's series."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from application.read_queries import Row
from projections.influx import InfluxConfig
from projections.influx_http import InfluxHTTPClient, quote_ident
from projections.models import TIMESERIES_TABLE, table


def _tags(text: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in text.split(",")) if text else {}


class SqlSeries:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def series(
        self, measurement: str, session_id: str, tags: Mapping[str, str], last: int
    ) -> list[Row]:
        t = table(TIMESERIES_TABLE)
        wanted = {"session": session_id, **tags}
        out: list[Row] = []
        stmt = select(t).where(t.c.measurement == measurement).order_by(t.c.time_ns.desc(), t.c.tags)
        async with self.engine.connect() as conn:
            result = await conn.stream(stmt)
            async for r in result:
                tag_map = _tags(r.tags)
                if all(tag_map.get(k) == v for k, v in wanted.items()):
                    out.append({"time_ns": r.time_ns, "tags": tag_map, "fields": json.loads(r.fields)})
                    if len(out) == last:
                        break
            await result.close()
        return out[::-1]


class InfluxSeries:
    def __init__(self, client: InfluxHTTPClient, config: InfluxConfig) -> None:
        self.client = client
        self.config = config
        self._tag_keys: dict[str, frozenset[str]] = {}

    async def _tags_of(self, measurement: str) -> frozenset[str]:
        """Which columns of a `SELECT *` are tags (InfluxDB returns tags and fields side by side)."""
        if measurement not in self._tag_keys:
            found = await self.client.query(
                self.config.database, f"SHOW TAG KEYS FROM {self._source(measurement)}"
            )
            self._tag_keys[measurement] = frozenset(v[0] for s in found for v in s.values)
        return self._tag_keys[measurement]

    def _source(self, measurement: str) -> str:
        return f"{quote_ident(self.config.retention_policy)}.{quote_ident(measurement)}"

    async def series(
        self, measurement: str, session_id: str, tags: Mapping[str, str], last: int
    ) -> list[Row]:
        wanted = {"session": session_id, **tags}
        where = " AND ".join(f"{quote_ident(k)} = '{_literal(v)}'" for k, v in sorted(wanted.items()))
        q = f"SELECT * FROM {self._source(measurement)} WHERE {where} ORDER BY time DESC LIMIT {int(last)}"
        tag_keys = await self._tags_of(measurement)
        rows: list[Row] = []
        for s in await self.client.query(self.config.database, q):
            for values in s.values:
                point = dict(zip(s.columns, values, strict=True))
                rows.append({"time_ns": point.pop("time"),
                             "tags": {k: v for k, v in point.items() if k in tag_keys and v is not None},
                             "fields": {k: v for k, v in point.items() if k not in tag_keys and v is not None}})  # fmt: skip
        rows.sort(key=lambda r: r["time_ns"])
        return rows


def _literal(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
