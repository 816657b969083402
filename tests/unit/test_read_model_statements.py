"""The read models' kept statements: compiled once per shape for asyncpg, with UUIDs read as text but sorted
and compared as UUIDs, parameters bound by name; the number kept is bounded whatever queries are sent."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import create_async_engine

from application.read_queries import OrderFilter, Page
from projections.models import table
from projections.queries import _STATEMENTS, SqlReadModels, _Statement
from projections.schema import make_engine

pytestmark = pytest.mark.unit


def test_a_page_statement_on_asyncpg_reads_uuid_text_but_orders_and_seeks_by_uuid() -> None:
    engine = create_async_engine("postgresql+asyncpg://reader@127.0.0.1/none")  # never connects
    read_models = SqlReadModels(engine)
    kept: list[tuple[_Statement, dict[str, object]]] = []

    async def capture(statement: _Statement, parameters: dict[str, object]) -> list[dict[str, object]]:
        kept.append((statement, parameters))
        return []

    read_models._all = capture  # type: ignore[method-assign]
    after = (1_700_000_000_000_000_000, "8445e624-60b8-53de-8219-4434476758fe")
    page = asyncio.run(
        read_models.orders(OrderFilter("s1", status="filled"), 100, after, ("order_id", "status"))
    )
    assert page == Page([], False)
    ((statement, parameters),) = kept
    sql = " ".join(statement.sql.split())  # type: ignore[union-attr]
    assert sql.startswith(
        "SELECT CAST(orders.order_id AS VARCHAR) AS order_id, orders.status, orders.created_ns"
    )
    # sorted and compared on the UUID column itself, not on its text label
    assert "ORDER BY orders.created_ns, orders.order_id LIMIT" in sql
    assert "orders.order_id > $4::UUID" in sql and "orders.created_ns = $3::BIGINT" in sql
    positional = [parameters[name] for name in statement.parameters]
    assert (
        positional[:3] == ["s1", "filled", after[0]]
        and str(positional[3]) == after[1]
        and positional[4] == 101
    )
    assert len(re.findall(r"\$\d+", sql)) == 6  # the time bound twice, one parameter for it


def test_in_lists_and_sqlite_go_through_sqlalchemy(tmp_path: Path) -> None:
    t = table("orders")
    pg = SqlReadModels(create_async_engine("postgresql+asyncpg://reader@127.0.0.1/none"))
    by_ids = select(t).where(t.c.order_id.in_(bindparam("order_ids", expanding=True)))
    assert _Statement.of(by_ids, pg._driver_dialect).sql is None
    lite = SqlReadModels(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite'}"))
    assert lite._driver_dialect is None


def test_kept_statements_are_bounded() -> None:
    read_models = SqlReadModels(create_async_engine("postgresql+asyncpg://reader@127.0.0.1/none"))
    t = table("orders")
    for i in range(_STATEMENTS + 50):
        read_models._statement(("shape", i), lambda: select(t.c.order_id))
    assert len(read_models._statements) == _STATEMENTS
    assert ("shape", 0) not in read_models._statements and (
        "shape",
        _STATEMENTS + 49,
    ) in read_models._statements
