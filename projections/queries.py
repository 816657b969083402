"""`application.read_queries.ReadModelQueries` on the SQL read models (SQLite or PostgreSQL).

Lists are keyset-paginated on (time, id): a page costs the same at any depth and rows appearing meanwhile do
not shift it. Lookups by many ids are one `IN` statement each, which is what the API's dataloaders call."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, Uuid, and_, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from application.read_queries import Cursor, OrderFilter, Page, Row
from projections.models import table


def _plain(keys: list[str], uuids: list[int], rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows as mappings by column name, UUID columns as strings."""
    if not uuids:
        return [dict(zip(keys, r, strict=True)) for r in rows]
    out = []
    for r in rows:
        values = list(r)
        for i in uuids:
            if values[i] is not None:
                values[i] = str(values[i])
        out.append(dict(zip(keys, values, strict=True)))
    return out


def _uuids(ids: Sequence[str]) -> list[uuid.UUID]:
    out = []
    for i in ids:
        try:
            out.append(uuid.UUID(i))
        except ValueError:
            continue  # an id that is not a UUID matches no row
    return out


class SqlReadModels:
    def __init__(self, engine: AsyncEngine) -> None:
        # one statement per read: no transaction begun and rolled back around it (two round trips fewer)
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def _all(self, stmt: Select[Any]) -> list[dict[str, Any]]:
        uuids = [i for i, c in enumerate(stmt.selected_columns) if isinstance(c.type, Uuid)]
        for attempt in (1, 2):
            try:
                async with self.engine.connect() as conn:
                    result = await conn.execute(stmt)
                    return _plain(list(result.keys()), uuids, result.all())
            except DBAPIError as exc:
                # a pooled connection the server dropped (a restart): the engine has discarded it; a read
                # is safe to run again, so the API's engine needs no ping before every statement
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    async def _page(self, t: Table, time_col: str, id_col: str, where: list[ColumnElement[bool]], first: int,
                    after: Cursor | None, columns: Sequence[str] | None) -> Page:  # fmt: skip
        time_c, id_c = t.c[time_col], t.c[id_col]
        if after is not None:
            key: object = uuid.UUID(after[1]) if id_c.type.python_type is uuid.UUID else after[1]
            where = [*where, or_(time_c > after[0], and_(time_c == after[0], id_c > key))]
        read = [t] if columns is None else [t.c[c] for c in dict.fromkeys((*columns, time_col, id_col))]
        rows = await self._all(select(*read).where(*where).order_by(time_c, id_c).limit(first + 1))
        return Page(rows[:first], len(rows) > first)

    async def sessions(self) -> list[Row]:
        t = table("sessions")
        return await self._all(select(t).order_by(t.c.session_id))

    async def orders(self, where: OrderFilter, first: int, after: Cursor | None,
                     columns: Sequence[str] | None = None) -> Page:  # fmt: skip
        t = table("orders")
        conds: list[ColumnElement[bool]] = []
        for column, value in (("session_id", where.session_id), ("status", where.status),
                              ("instrument", where.instrument), ("venue", where.venue)):  # fmt: skip
            if value is not None:
                conds.append(t.c[column] == value)
        if where.since_ns is not None:
            conds.append(t.c.created_ns >= where.since_ns)
        if where.until_ns is not None:
            conds.append(t.c.created_ns < where.until_ns)
        return await self._page(t, "created_ns", "order_id", conds, first, after, columns)

    async def orders_by_id(self, order_ids: Sequence[str]) -> dict[str, Row]:
        t = table("orders")
        rows = await self._all(select(t).where(t.c.order_id.in_(_uuids(order_ids))))
        return {r["order_id"]: r for r in rows}

    async def _grouped(self, t: Table, order_ids: Sequence[str], *order: str) -> dict[str, list[Row]]:
        grouped: dict[str, list[Row]] = defaultdict(list)
        stmt = select(t).where(t.c.order_id.in_(_uuids(order_ids))).order_by(*(t.c[c] for c in order))
        for r in await self._all(stmt):
            grouped[r["order_id"]].append(r)
        return grouped

    async def order_events(self, order_ids: Sequence[str]) -> dict[str, list[Row]]:
        return await self._grouped(table("order_events"), order_ids, "event_time_ns", "sequence", "event_id")

    async def fills_of_orders(self, order_ids: Sequence[str]) -> dict[str, list[Row]]:
        return await self._grouped(table("fills"), order_ids, "event_time_ns", "event_id")

    async def fills(self, session_id: str, first: int, after: Cursor | None,
                    columns: Sequence[str] | None = None) -> Page:  # fmt: skip
        t = table("fills")
        return await self._page(t, "event_time_ns", "event_id", [t.c.session_id == session_id], first, after,
                                columns)  # fmt: skip

    async def positions(self, session_id: str) -> list[Row]:
        t = table("positions")
        return await self._all(select(t).where(t.c.session_id == session_id)
                               .order_by(t.c.account, t.c.venue, t.c.asset))  # fmt: skip

    async def equity(self, session_id: str, first: int, after: Cursor | None,
                     columns: Sequence[str] | None = None) -> Page:  # fmt: skip
        t = table("equity_samples")
        return await self._page(t, "event_time_ns", "event_id", [t.c.session_id == session_id], first, after,
                                columns)  # fmt: skip

    async def signals(self, session_id: str, first: int, after: Cursor | None,
                      columns: Sequence[str] | None = None) -> Page:  # fmt: skip
        t = table("signals")
        return await self._page(t, "event_time_ns", "opportunity_id", [t.c.session_id == session_id], first,
                                after, columns)  # fmt: skip

    async def latest_spreads(self, session_id: str) -> list[Row]:
        t = table("latest_spreads")
        return await self._all(select(t).where(t.c.session_id == session_id)
                               .order_by(t.c.instrument, t.c.buy_venue, t.c.sell_venue))  # fmt: skip

    async def risk_state(self, session_id: str) -> Row | None:
        t = table("risk_state")
        rows = await self._all(select(t).where(t.c.session_id == session_id))
        return rows[0] if rows else None

    async def risk_events(self, session_id: str, first: int, after: Cursor | None,
                          columns: Sequence[str] | None = None) -> Page:  # fmt: skip
        t = table("risk_events")
        return await self._page(t, "event_time_ns", "event_id", [t.c.session_id == session_id], first, after,
                                columns)  # fmt: skip
