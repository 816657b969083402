"""No N+1: a nested orders query (orders, each with its history and fills) costs a fixed number of SQL
statements whatever the page size, because history and fills go through per-request dataloaders."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from adapters.api.keys import Principal, Role
from adapters.api.schema import schema
from adapters.api.services import ApiContext, ApiServices
from projections.queries import SqlReadModels
from projections.schema import make_engine
from tests.api_support import SESSION, sample_home

pytestmark = pytest.mark.unit

NESTED = """query($s: String!, $n: Int!) { orders(session: $s, first: $n) { edges { node {
  orderId status history { eventType statusAfter } fills { price quantity fee } } } } }"""


def test_nested_orders_query_runs_three_statements_whatever_the_page_size(tmp_path: Path) -> None:
    settings = sample_home(tmp_path)

    async def run(n: int) -> tuple[int, Any]:
        engine = make_engine(f"sqlite+aiosqlite:///{settings.home / 'read_models.sqlite'}")
        statements: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute",
                     lambda conn, cursor, stmt, *a: statements.append(stmt))  # fmt: skip
        services = ApiServices(
            read_models=SqlReadModels(engine),
            series=None,
            open_log=None,
            feed=None,  # type: ignore[arg-type]
            keys=None,
            jobs=None,
            target="embedded",
        )  # type: ignore[arg-type]
        context = ApiContext(services, Principal("k", Role.viewer, "test"))
        result = await schema.execute(NESTED, variable_values={"s": SESSION, "n": n}, context_value=context)
        await engine.dispose()
        assert result.errors is None, result.errors
        return len(statements), result.data

    few, small = asyncio.run(run(2))
    many, large = asyncio.run(run(20))
    edges = large["orders"]["edges"]
    assert (
        len(edges) == 20
        and any(e["node"]["fills"] for e in edges)
        and all(e["node"]["history"] for e in edges)
    )
    assert few == many == 3  # orders page, all histories, all fills
