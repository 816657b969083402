"""A migrated read-model schema of its own on the real PostgreSQL, dropped afterwards, so tests don't meet."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.settings import Settings
from projections.schema import make_engine, migrate


@asynccontextmanager
async def migrated_schema(prefix: str) -> AsyncIterator[AsyncEngine]:
    dsn = Settings().pg_dsn
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    probe = make_engine(dsn)
    try:
        async with probe.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {dsn} unreachable ({exc!r}); run `bash deploy/local/services.sh start`")
    finally:
        await probe.dispose()
    engine = make_engine(dsn, schema=schema)
    await migrate(engine, schema=schema)
    try:
        yield engine
    finally:
        await engine.dispose()
        cleanup = make_engine(dsn)
        async with cleanup.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await cleanup.dispose()
