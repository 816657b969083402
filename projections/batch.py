"""A unit of work for one projection batch: rows are read at most once, changed in memory, written at the end.

Handlers never issue SQL themselves: they `get` rows (cached; a miss is remembered), change copies and `put`
them back. `flush` writes every changed row with one multi-row upsert per table (ON CONFLICT on the primary
key, PostgreSQL and SQLite alike). So a batch of 1000 events costs a handful of round trips, and the batch is
all-or-nothing because the projector runs `flush` and the tracking update in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]
Key = tuple[Any, ...]

_PREFETCH_CHUNK = 500


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
            params: Sequence[Row] = [{c: row.get(c) for c in columns} for row in rows.values()]
            await self.conn.execute(upsert_statement(table, dialect), list(params))
        self._dirty.clear()
