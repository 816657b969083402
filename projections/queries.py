"""`application.read_queries.ReadModelQueries` on the SQL read models (SQLite or PostgreSQL).

Lists are keyset-paginated on (time, id): a page costs the same at any depth and rows appearing meanwhile do
not shift it. Lookups by many ids are one `IN` statement each, which is what the API's dataloaders call.

Each statement is built once per shape (which filters, which columns) with named parameters, and kept: an
API request only binds values. On PostgreSQL a kept statement is compiled once to SQL and run on the pooled
connection's asyncpg driver directly: SQLAlchemy's per-execution work (cache key, result processing) cost
more than the driver's own fetch of a 100-row page. Statements whose columns need SQLAlchemy's result
processing, or whose parameters expand (IN lists), run through SQLAlchemy."""

from __future__ import annotations

import operator
import uuid
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from asyncpg import InterfaceError as DriverInterfaceError
from asyncpg import PostgresConnectionError
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    LargeBinary,
    Numeric,
    Select,
    String,
    Table,
    Uuid,
    and_,
    bindparam,
    cast,
    or_,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from application.read_queries import Cursor, OrderFilter, Page, Row
from projections.models import Money, table

_DRIVER_TYPES = (String, Integer, Boolean, Numeric, Money, Uuid, LargeBinary)
"""Column types asyncpg returns as SQLAlchemy would (UUIDs are turned to text for both paths below)."""

_LOST = (DriverInterfaceError, PostgresConnectionError, ConnectionError)
"""Driver errors of a connection that is gone (a server restart): the read is run again on a new one."""

_OPS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {"eq": operator.eq, "ge": operator.ge,
                                                              "lt": operator.lt}  # fmt: skip
"""Filter operators; a filter (column, op) binds the parameter named `column_op`."""


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


async def _open_driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection of `conn`, past pooled ones the server has closed (a restart closes them all):
    asyncpg has seen their sockets close, so this needs no ping, and each one found is discarded."""
    while True:
        driver = (await conn.get_raw_connection()).driver_connection
        if not driver.is_closed():
            return driver
        await conn.invalidate()


@dataclass(frozen=True)
class _Statement:
    select: Select[Any]
    keys: list[str]
    uuids: list[int]
    """Indexes of the UUID columns."""
    sql: str | None
    """The statement compiled for asyncpg, UUIDs read as text (None: run through SQLAlchemy)."""
    parameters: tuple[str, ...]
    """Parameter names in the order of `sql`'s $1, $2, ..."""

    @classmethod
    def of(cls, stmt: Select[Any], driver_dialect: Dialect | None) -> _Statement:
        columns = list(stmt.selected_columns)
        keys = [c.name for c in columns]
        uuids = [i for i, c in enumerate(columns) if isinstance(c.type, Uuid)]
        if driver_dialect is not None and all(isinstance(c.type, _DRIVER_TYPES) for c in columns):
            # the server writes a UUID as text: no Python call per value to turn asyncpg's UUID into a str
            as_text = [cast(c, String).label(c.name) if i in uuids else c for i, c in enumerate(columns)]
            compiled = stmt.with_only_columns(*as_text).compile(dialect=driver_dialect)
            if not compiled.literal_execute_params and not compiled.post_compile_params:
                return cls(stmt, keys, uuids, compiled.string, tuple(compiled.positiontup or ()))
        return cls(stmt, keys, uuids, None, ())


def _where(t: Table, filters: Sequence[tuple[str, str]]) -> list[ColumnElement[bool]]:
    return [_OPS[op](t.c[column], bindparam(f"{column}_{op}")) for column, op in filters]


_STATEMENTS = 256
"""Statements kept per read-model object: shapes follow the columns queries select, so their number is not
fixed; past this the oldest is built again when next used."""


class SqlReadModels:
    def __init__(self, engine: AsyncEngine) -> None:
        # one statement per read: no transaction begun and rolled back around it (two round trips fewer)
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._driver_dialect = engine.dialect if engine.dialect.driver == "asyncpg" else None
        self._statements: dict[Hashable, _Statement] = {}

    def _statement(self, shape: Hashable, build: Callable[[], Select[Any]]) -> _Statement:
        found = self._statements.get(shape)
        if found is None:
            if len(self._statements) >= _STATEMENTS:
                del self._statements[next(iter(self._statements))]
            found = self._statements[shape] = _Statement.of(build(), self._driver_dialect)
        return found

    async def _all(self, statement: _Statement, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        for attempt in (1, 2):
            async with self.engine.connect() as conn:
                try:
                    if statement.sql is None:
                        rows = (await conn.execute(statement.select, parameters)).all()
                        return _plain(statement.keys, statement.uuids, rows)
                    driver = await _open_driver(conn)
                    records = await driver.fetch(
                        statement.sql, *[parameters[p] for p in statement.parameters]
                    )
                    return [dict(r) for r in records]
                except DBAPIError as exc:
                    # a pooled connection the server dropped (a restart): the engine has discarded it; a read
                    # is safe to run again, so the API's engine needs no ping before every statement
                    if attempt == 2 or not exc.connection_invalidated:
                        raise
                except _LOST:
                    await conn.invalidate()  # closed while the statement ran
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    async def _page(self, name: str, time_col: str, id_col: str, filters: list[tuple[str, str]],
                    parameters: dict[str, Any], first: int, after: Cursor | None,
                    columns: Sequence[str] | None) -> Page:  # fmt: skip
        t = table(name)
        read = None if columns is None else tuple(dict.fromkeys((*columns, time_col, id_col)))

        def build() -> Select[Any]:
            time_c, id_c = t.c[time_col], t.c[id_col]
            where = _where(t, filters)
            if after is not None:
                after_time = bindparam("after_time", type_=time_c.type)
                where.append(
                    or_(time_c > after_time, and_(time_c == after_time, id_c > bindparam("after_id")))
                )
            stmt = select(*([t] if read is None else [t.c[c] for c in read]))
            return stmt.where(*where).order_by(time_c, id_c).limit(bindparam("limit", type_=Integer))

        parameters = {**parameters, "limit": first + 1}
        if after is not None:
            is_uuid = t.c[id_col].type.python_type is uuid.UUID
            parameters.update(after_time=after[0], after_id=uuid.UUID(after[1]) if is_uuid else after[1])
        statement = self._statement(("page", name, tuple(filters), after is not None, read), build)
        rows = await self._all(statement, parameters)
        return Page(rows[:first], len(rows) > first)

    async def _of_session(self, name: str, session_id: str, *order: str) -> list[dict[str, Any]]:
        """A session's rows of a small table, in `order`."""

        def build() -> Select[Any]:
            t = table(name)
            return select(t).where(*_where(t, [("session_id", "eq")])).order_by(*(t.c[c] for c in order))

        return await self._all(self._statement(("session", name), build), {"session_id_eq": session_id})

    async def _by_order_ids(self, name: str, order_ids: Sequence[str], *order: str) -> list[dict[str, Any]]:
        def build() -> Select[Any]:
            t = table(name)
            stmt = select(t).where(t.c.order_id.in_(bindparam("order_ids", expanding=True)))
            return stmt.order_by(*(t.c[c] for c in order))

        statement = self._statement(("by_order_ids", name), build)
        return await self._all(statement, {"order_ids": _uuids(order_ids)})

    async def sessions(self) -> list[Row]:
        t = table("sessions")
        return await self._all(self._statement(("sessions",), lambda: select(t).order_by(t.c.session_id)), {})

    async def orders(self, where: OrderFilter, first: int, after: Cursor | None,
                     columns: Sequence[str] | None = None) -> Page:  # fmt: skip
        filters, parameters = [], {}
        for column, op, value in (("session_id", "eq", where.session_id), ("status", "eq", where.status),
                                  ("instrument", "eq", where.instrument), ("venue", "eq", where.venue),
                                  ("created_ns", "ge", where.since_ns), ("created_ns", "lt", where.until_ns)):  # fmt: skip
            if value is not None:
                filters.append((column, op))
                parameters[f"{column}_{op}"] = value
        return await self._page(
            "orders", "created_ns", "order_id", filters, parameters, first, after, columns
        )

    async def orders_by_id(self, order_ids: Sequence[str]) -> dict[str, Row]:
        return {r["order_id"]: r for r in await self._by_order_ids("orders", order_ids)}

    async def _grouped(self, name: str, order_ids: Sequence[str], *order: str) -> dict[str, list[Row]]:
        grouped: dict[str, list[Row]] = defaultdict(list)
        for r in await self._by_order_ids(name, order_ids, *order):
            grouped[r["order_id"]].append(r)
        return grouped

    async def order_events(self, order_ids: Sequence[str]) -> dict[str, list[Row]]:
        return await self._grouped("order_events", order_ids, "event_time_ns", "sequence", "event_id")

    async def fills_of_orders(self, order_ids: Sequence[str]) -> dict[str, list[Row]]:
        return await self._grouped("fills", order_ids, "event_time_ns", "event_id")

    async def _session_page(self, name: str, id_col: str, session_id: str, first: int, after: Cursor | None,
                            columns: Sequence[str] | None) -> Page:  # fmt: skip
        return await self._page(name, "event_time_ns", id_col, [("session_id", "eq")],
                                {"session_id_eq": session_id}, first, after, columns)  # fmt: skip

    async def fills(self, session_id: str, first: int, after: Cursor | None,
                    columns: Sequence[str] | None = None) -> Page:  # fmt: skip
        return await self._session_page("fills", "event_id", session_id, first, after, columns)

    async def positions(self, session_id: str) -> list[Row]:
        return await self._of_session("positions", session_id, "account", "venue", "asset")

    async def equity(self, session_id: str, first: int, after: Cursor | None,
                     columns: Sequence[str] | None = None) -> Page:  # fmt: skip
        return await self._session_page("equity_samples", "event_id", session_id, first, after, columns)

    async def signals(self, session_id: str, first: int, after: Cursor | None,
                      columns: Sequence[str] | None = None) -> Page:  # fmt: skip
        return await self._session_page("signals", "opportunity_id", session_id, first, after, columns)

    async def latest_spreads(self, session_id: str) -> list[Row]:
        return await self._of_session("latest_spreads", session_id, "instrument", "buy_venue", "sell_venue")

    async def risk_state(self, session_id: str) -> Row | None:
        rows = await self._of_session("risk_state", session_id)
        return rows[0] if rows else None

    async def risk_events(self, session_id: str, first: int, after: Cursor | None,
                          columns: Sequence[str] | None = None) -> Page:  # fmt: skip
        return await self._session_page("risk_events", "event_id", session_id, first, after, columns)
