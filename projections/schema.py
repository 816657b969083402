"""Schema management: Alembic migrations of the read models, run programmatically on either dialect.

`await migrate(url)` (or `migrate_sync(url)` outside an event loop) upgrades the database to head. It accepts
a URL or an AsyncEngine; with `schema=` (PostgreSQL) every table, and Alembic's version table, go into that
schema (created if missing), which is how the integration tests isolate themselves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "projections_alembic_version"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def make_engine(url: str, *, schema: str | None = None, **kwargs: object) -> AsyncEngine:
    """An AsyncEngine suited to projections: pre-ping (a server restart invalidates the pool instead of
    failing the first batch), and on PostgreSQL an optional `search_path` for a per-test or per-tenant schema.
    SQLite gets a busy timeout so a reader never fails on the projector's write lock."""
    connect_args: dict[str, object] = {}
    if url.startswith("postgresql"):
        if schema:
            connect_args["server_settings"] = {"search_path": schema}
        connect_args.setdefault("timeout", 10)
        kwargs.setdefault("pool_pre_ping", True)
    elif url.startswith("sqlite"):
        connect_args["timeout"] = 30
    return create_async_engine(url, connect_args=connect_args, **kwargs)  # type: ignore[arg-type]


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _downgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def migrate(
    url_or_engine: str | AsyncEngine, *, schema: str | None = None, revision: str = "head"
) -> None:
    """Upgrade the read-model schema to `revision` (head by default); idempotent."""
    own = isinstance(url_or_engine, str)
    engine = make_engine(url_or_engine, schema=schema) if isinstance(url_or_engine, str) else url_or_engine
    try:
        async with engine.begin() as conn:
            if schema and conn.dialect.name == "postgresql":
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                await conn.execute(text(f'SET LOCAL search_path TO "{schema}"'))
            await conn.run_sync(_upgrade, revision)
    finally:
        if own:
            await engine.dispose()


async def downgrade(url_or_engine: str | AsyncEngine, revision: str = "base") -> None:
    own = isinstance(url_or_engine, str)
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade, revision)
    finally:
        if own:
            await engine.dispose()


def migrate_sync(url: str, *, schema: str | None = None) -> None:
    asyncio.run(migrate(url, schema=schema))
