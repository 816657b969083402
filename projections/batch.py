"""A unit of work for one projection batch: rows are read at most once, changed in memory, written at the end.

Handlers never issue SQL themselves: they `get` rows (cached; a miss is remembered), change copies and `put`
them back. `flush` writes every changed row with one multi-row upsert per table (ON CONFLICT on the primary
key, PostgreSQL and SQLite alike). So a batch of 1000 events costs a handful of round trips, and the batch is
all-or-nothing because the projector runs `flush` and the tracking update in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, and_, any_, bindparam, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]
Key = tuple[Any, ...]

_PREFETCH_CHUNK = 500
_PG_PREFETCH_CHUNK = 20_000
_PG_LOOKUPS: dict[Table, Any] = {}


def pk_columns(table: Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def upsert_statement(table: Table, dialect_name: str, *, update: bool = True) -> Any:
    """INSERT ... ON CONFLICT (pk) DO UPDATE SET every other column = excluded (or DO NOTHING)."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    stmt = insert(table)
    keys = pk_columns(table)
    others = [c.name for c in table.columns if c.name not in keys]
    if not update or not others:
        return stmt.on_conflict_do_nothing(index_elements=keys)
    return stmt.on_conflict_do_update(index_elements=keys, set_={n: stmt.excluded[n] for n in others})


class Batch:
    def __init__(
        self, conn: AsyncConnection, tables: Mapping[str, Table], session_id: str, stream: str
    ) -> None:
        self.conn = conn
        self.tables = tables
        self.session_id = session_id
        self.stream = stream
        self._cache: dict[str, dict[Key, Row | None]] = {}
        self._dirty: dict[str, dict[Key, Row]] = {}
        self._pk: dict[str, list[str]] = {name: pk_columns(t) for name, t in tables.items()}

    def key_of(self, name: str, row: Row) -> Key:
        return tuple(row[c] for c in self._pk[name])

    async def prefetch(self, name: str, keys: Iterable[Key]) -> None:
        """Load many rows by primary key in a few queries; keys not found are remembered as absent."""
        cache = self._cache.setdefault(name, {})
        wanted = list(dict.fromkeys(k for k in keys if k not in cache))
        if not wanted:
            return
        table = self.tables[name]
        cols = [table.c[c] for c in self._pk[name]]
        if self.conn.dialect.name == "postgresql":
            await self._prefetch_pg(name, table, cols, wanted, cache)
            return
        for start in range(0, len(wanted), _PREFETCH_CHUNK):
            chunk = wanted[start : start + _PREFETCH_CHUNK]
            if len(cols) == 1:
                cond = cols[0].in_([k[0] for k in chunk])
            else:
                cond = tuple_(*cols).in_(chunk)
            for k in chunk:
                cache[k] = None
            result = await self.conn.execute(select(table).where(cond))
            for r in result.mappings():
                row = dict(r)
                cache[self.key_of(name, row)] = row

    async def _prefetch_pg(self, name: str, table: Table, cols: list[Any], wanted: list[Key],
                           cache: dict[Key, Row | None]) -> None:  # fmt: skip
        """PostgreSQL: the keys travel as arrays, one per key column (`= ANY($1)` or a join with
        `unnest($1, $2, ...)`), so the statement text is the same for any number of keys (prepared once,
        planned as an index lookup) instead of an IN list of thousands of literals re-planned every time."""
        stmt = _PG_LOOKUPS.get(table)
        if stmt is None:
            arrays = [bindparam(f"k{i}", type_=postgresql.ARRAY(c.type)) for i, c in enumerate(cols)]
            if len(cols) == 1:
                stmt = select(table).where(cols[0] == any_(arrays[0]))
            else:
                keys = (
                    func.unnest(*arrays)
                    .table_valued(*(f"k{i}" for i in range(len(cols))))
                    .render_derived("k")
                )
                stmt = select(table).join(keys, and_(*(c == keys.c[f"k{i}"] for i, c in enumerate(cols))))
            _PG_LOOKUPS[table] = stmt
        for start in range(0, len(wanted), _PG_PREFETCH_CHUNK):
            chunk = wanted[start : start + _PG_PREFETCH_CHUNK]
            for k in chunk:
                cache[k] = None
            params = {f"k{i}": [k[i] for k in chunk] for i in range(len(cols))}
            result = await self.conn.execute(stmt, params)
            for r in result.mappings():
                row = dict(r)
                cache[self.key_of(name, row)] = row

    async def get(self, name: str, key: Key) -> Row | None:
        """The current row (a copy: change it and `put` it back), or None."""
        cache = self._cache.setdefault(name, {})
        if key not in cache:
            await self.prefetch(name, [key])
        row = cache[key]
        return dict(row) if row is not None else None

    async def exists(self, name: str, key: Key) -> bool:
        return await self.get(name, key) is not None

    def put(self, name: str, row: Row) -> None:
        key = self.key_of(name, row)
        self._cache.setdefault(name, {})[key] = row
        self._dirty.setdefault(name, {})[key] = row

    @property
    def changed_rows(self) -> int:
        return sum(len(rows) for rows in self._dirty.values())

    async def flush(self) -> None:
        dialect = self.conn.dialect.name
        for name, rows in self._dirty.items():
            if not rows:
                continue
            table = self.tables[name]
            columns = [c.name for c in table.columns]
            if dialect == "postgresql":
                # one statement whatever the row count: the rows travel as one array per column
                await self.conn.execute(_pg_array_upsert(table),
                                        {c: [row.get(c) for row in rows.values()] for c in columns})  # fmt: skip
                continue
            params: Sequence[Row] = [{c: row.get(c) for c in columns} for row in rows.values()]
            await self.conn.execute(upsert_statement(table, dialect), list(params))
        self._dirty.clear()


_PG_UPSERTS: dict[Table, Any] = {}


def _pg_array_upsert(table: Table) -> Any:
    """INSERT INTO t (cols) SELECT * FROM unnest($1::type[], ...) ON CONFLICT (pk) DO UPDATE: a batch's rows
    of a table in one statement and one round trip (rows are unique per key: the batch keys them by pk)."""
    stmt = _PG_UPSERTS.get(table)
    if stmt is None:
        columns = [c.name for c in table.columns]
        arrays = [bindparam(c.name, type_=postgresql.ARRAY(c.type)) for c in table.columns]
        rows = func.unnest(*arrays).table_valued(*columns).render_derived("r")
        insert = postgresql.insert(table).from_select(columns, select(*(rows.c[c] for c in columns)))
        keys = pk_columns(table)
        others = [c for c in columns if c not in keys]
        stmt = (insert.on_conflict_do_update(index_elements=keys, set_={n: insert.excluded[n] for n in others})
                if others else insert.on_conflict_do_nothing(index_elements=keys))  # fmt: skip
        _PG_UPSERTS[table] = stmt
    return stmt
