"""A connection page reads only the columns its query selects (fragments included), gives the same values as
a page read whole, and still paginates; a node field with a resolver makes the page read every column."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from adapters.api.keys import Principal, Role
from adapters.api.schema import schema
from adapters.api.services import ApiContext, ApiServices
from projections.models import table
from projections.queries import SqlReadModels
from projections.schema import make_engine
from tests.api_support import SESSION, sample_home

pytestmark = pytest.mark.unit

PRUNED = """query($s: String!, $after: String) { orders(session: $s, first: 5, after: $after) {
  edges { cursor node { orderId status ...Amounts } } pageInfo { endCursor hasNextPage } } }
fragment Amounts on Order { fees ... on Order { createdNs filledQuantity } }"""
WHOLE = """query($s: String!) { orders(session: $s, first: 5) {
  edges { node { orderId status fees createdNs filledQuantity history { eventType } } } } }"""


def _run(settings: Any, query: str, variables: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    async def main() -> tuple[list[str], dict[str, Any]]:
        engine = make_engine(f"sqlite+aiosqlite:///{settings.home / 'read_models.sqlite'}")
        statements: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute",
                     lambda conn, cursor, stmt, *a: statements.append(stmt))  # fmt: skip
        services = ApiServices(read_models=SqlReadModels(engine), series=None, open_log=None, feed=None,  # type: ignore[arg-type]
                               keys=None, jobs=None, target="embedded")  # type: ignore[arg-type]  # fmt: skip
        context = ApiContext(services, Principal("k", Role.viewer, "test"))
        result = await schema.execute(query, variable_values=variables, context_value=context)
        await engine.dispose()
        assert result.errors is None, result.errors
        assert result.data is not None
        return statements, result.data

    return asyncio.run(main())


def _columns(statement: str) -> list[str]:
    listed = re.match(r"SELECT (.*?)\s+FROM orders", statement, re.S)
    assert listed, statement
    return [c.strip().removeprefix("orders.") for c in listed.group(1).split(",")]


def test_a_page_reads_the_selected_columns_and_the_keyset_only(tmp_path: Path) -> None:
    settings = sample_home(tmp_path)
    statements, pruned = _run(settings, PRUNED, {"s": SESSION, "after": None})
    assert _columns(statements[0]) == ["order_id", "status", "fees", "created_ns", "filled_quantity"]

    statements, whole = _run(settings, WHOLE, {"s": SESSION})
    assert _columns(statements[0]) == [c.name for c in table("orders").columns]  # a resolver: every column
    nodes = [e["node"] for e in pruned["orders"]["edges"]]
    assert len(nodes) == 5 and all(n["fees"] is not None and n["createdNs"] for n in nodes)
    assert nodes == [{k: v for k, v in e["node"].items() if k != "history"} for e in whole["orders"]["edges"]]


def test_a_pruned_page_paginates(tmp_path: Path) -> None:
    settings = sample_home(tmp_path)
    _, first = _run(settings, PRUNED, {"s": SESSION, "after": None})
    _, second = _run(settings, PRUNED, {"s": SESSION, "after": first["orders"]["pageInfo"]["endCursor"]})
    ids = [e["node"]["orderId"] for page in (first, second) for e in page["orders"]["edges"]]
    created = [int(e["node"]["createdNs"]) for page in (first, second) for e in page["orders"]["edges"]]
    assert len(set(ids)) == 10 and created == sorted(created)
    assert first["orders"]["edges"][-1]["cursor"] == first["orders"]["pageInfo"]["endCursor"]
