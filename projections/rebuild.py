"""Rebuild the read models of a session from the log, without taking them offline.

1. Create fresh copies of every read-model table and of the tracking table, named `<name>__rebuild` (their
   primary keys and indexes get the same suffix, since index names are per schema), dropping any left over
   from an interrupted rebuild.
2. Project the session(s) from offset 0 into the copies (projections.projector, batches of `batch_size`),
   while the live tables keep serving queries and the live projector keeps running.
3. Swap, in ONE transaction: lock the live tables (PostgreSQL: ACCESS EXCLUSIVE; SQLite: BEGIN IMMEDIATE),
   copy into the fresh tables the rows of every *other* session (and the tracking rows of other projections,
   e.g. InfluxDB's), rename `<name>` -> `<name>__old`, `<name>__rebuild` -> `<name>`, drop the old tables
   and give the indexes their canonical names back. Readers see either the old set or the new one, never a
   mix; a failure anywhere before COMMIT leaves the live tables untouched.

After the swap the tracking row of the session is the rebuilt one, so the live projector resumes right after
the last offset the rebuild applied.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import MetaData, Table, and_, insert, not_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import conv

from application.ports import EventLog
from projections.models import READ_MODEL_TABLES, TRACKING_TABLE, Base
from projections.projector import Backoff, SqlProjector

SUFFIX = "__rebuild"
OLD_SUFFIX = "__old"
SWAPPED: tuple[str, ...] = (*READ_MODEL_TABLES, TRACKING_TABLE)


def suffixed_tables(suffix: str = SUFFIX) -> dict[str, Table]:
    """Copies of the live tables named `<name><suffix>`, constraint and index names suffixed too."""
    md = MetaData()
    out: dict[str, Table] = {}
    for name in SWAPPED:
        copy = Base.metadata.tables[name].to_metadata(md, name=f"{name}{suffix}")
        for constraint in copy.constraints:
            if isinstance(constraint.name, str):
                constraint.name = conv(f"{constraint.name}{suffix}")
        for index in copy.indexes:
            if isinstance(index.name, str):
                index.name = conv(f"{index.name}{suffix}")
        out[name] = copy
    return out


def _q(conn: AsyncConnection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


async def _drop_tables(engine: AsyncEngine, tables: dict[str, Table]) -> None:
    async with engine.begin() as conn:
        for t in tables.values():
            await conn.execute(text(f"DROP TABLE IF EXISTS {_q(conn, t.name)}"))


async def _create_tables(engine: AsyncEngine, tables: dict[str, Table]) -> None:
    async with engine.begin() as conn:
        for t in tables.values():
            await conn.run_sync(t.create)


async def _swap(
    conn: AsyncConnection, fresh: dict[str, Table], sessions: Sequence[str], projection: str
) -> None:
    pg = conn.dialect.name == "postgresql"
    live = {name: Base.metadata.tables[name] for name in SWAPPED}
    if pg:
        names = ", ".join(_q(conn, t.name) for t in live.values())
        await conn.execute(text(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE"))
    # Rows the rebuild did not produce: other sessions, and other projections' progress.
    for name, old in live.items():
        new = fresh[name]
        cols = [c.name for c in old.columns]
        if name == TRACKING_TABLE:
            keep = not_(and_(old.c.projection == projection, old.c.session_id.in_(list(sessions))))
        else:
            keep = old.c.session_id.not_in(list(sessions))
        await conn.execute(insert(new).from_select(cols, select(*[old.c[c] for c in cols]).where(keep)))
    for name, old in live.items():
        new = fresh[name]
        await conn.execute(
            text(f"ALTER TABLE {_q(conn, old.name)} RENAME TO {_q(conn, old.name + OLD_SUFFIX)}")
        )
        await conn.execute(text(f"ALTER TABLE {_q(conn, new.name)} RENAME TO {_q(conn, old.name)}"))
        await conn.execute(text(f"DROP TABLE {_q(conn, old.name + OLD_SUFFIX)}"))
        if pg:
            for constraint in new.constraints:
                if isinstance(constraint.name, str) and constraint.name.endswith(SUFFIX):
                    await conn.execute(text(f"ALTER INDEX {_q(conn, constraint.name)} RENAME TO "
                                            f"{_q(conn, constraint.name[: -len(SUFFIX)])}"))  # fmt: skip
            for index in new.indexes:
                await conn.execute(text(f"ALTER INDEX {_q(conn, str(index.name))} RENAME TO "
                                        f"{_q(conn, str(index.name)[: -len(SUFFIX)])}"))  # fmt: skip
        else:  # SQLite cannot rename an index: recreate it under its canonical name, in the same transaction
            for index in new.indexes:
                await conn.execute(text(f"DROP INDEX {_q(conn, str(index.name))}"))
            for index in old.indexes:
                await conn.run_sync(index.create)


async def rebuild(
    engine: AsyncEngine,
    log: EventLog,
    session_id: str | None,
    *,
    projection: str = "read_models",
    batch_size: int = 5000,
    backoff: Backoff = Backoff(),  # noqa: B008 - frozen
) -> int:
    """Rebuild the read models of `session_id` (None: every session of the log) and swap them in atomically.
    Returns how many records were projected."""
    sessions = [session_id] if session_id is not None else log.sessions()
    fresh = suffixed_tables()
    await _drop_tables(engine, fresh)
    await _create_tables(engine, fresh)
    try:
        projector = SqlProjector(engine, log, name=projection, batch_size=batch_size, tables=fresh,
                                 backoff=backoff)  # fmt: skip
        total = 0
        for sid in sessions:
            total += await projector.project_session(sid)

        async def swap() -> None:
            if engine.dialect.name == "sqlite":
                async with engine.connect() as conn:
                    await conn.exec_driver_sql("BEGIN IMMEDIATE")
                    try:
                        await _swap(conn, fresh, sessions, projection)
                    except BaseException:
                        await conn.rollback()
                        raise
                    await conn.commit()
            else:
                async with engine.begin() as conn:
                    await _swap(conn, fresh, sessions, projection)

        await backoff.run(swap, what="rebuild swap")
    except BaseException:
        await _drop_tables(engine, fresh)
        raise
    return total
