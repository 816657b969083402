"""PostgreSQL via SQLAlchemy 2 async + asyncpg: exact Decimal and timestamp round trip."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Numeric, Table, Text, select
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_numeric_and_timestamp_roundtrip(pg_dsn: str, unique_name: str) -> None:
    engine = create_async_engine(pg_dsn, connect_args={"timeout": 10})
    meta = MetaData()
    fills = Table(
        f"it_fills_{unique_name}",
        meta,
        Column("id", Integer, primary_key=True),
        Column("qty", Numeric(38, 18), nullable=False),
        Column("price", Numeric(20, 8), nullable=False),
        Column("ts", DateTime(timezone=True), nullable=False),
        Column("venue", Text, nullable=False),
    )
    row = {
        "id": 1,
        "qty": Decimal("0.123456789012345678"),
        "price": Decimal("65432.10000001"),
        "ts": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        "venue": "binance",
    }
    try:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)
            await conn.execute(fills.insert(), [row])
        try:
            async with engine.connect() as conn:
                got = (await conn.execute(select(fills).where(fills.c.id == 1))).mappings().one()
            assert dict(got) == row
            assert isinstance(got["qty"], Decimal) and str(got["qty"]) == "0.123456789012345678"
            assert str(got["price"]) == "65432.10000001"
            assert got["ts"].utcoffset() is not None and got["ts"].microsecond == 123456
        finally:
            async with engine.begin() as conn:
                await conn.run_sync(meta.drop_all)
    finally:
        await engine.dispose()
