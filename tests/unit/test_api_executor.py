"""The API's executor (compiled plans for plain subtrees) answers exactly what strawberry's own execution
answers, data and errors alike, on the sample session's read models; the document cache is bounded."""

from __future__ import annotations

import asyncio
import gc
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from graphql import ExecutionResult

from adapters.api.documents import CACHED_TEXT_LIMIT, Documents, Prepared
from adapters.api.executor import MASKED, response, run
from adapters.api.keys import Principal, Role
from adapters.api.schema import schema
from adapters.api.services import ApiContext, ApiServices
from adapters.entrypoints.commands import open_log
from application.read_queries import Page
from projections.queries import SqlReadModels
from projections.schema import make_engine
from tests.api_support import SESSION, sample_home

pytestmark = pytest.mark.unit

QUERIES = [
    """query($s: String!) { orders(session: $s, first: 30) { edges { cursor node { orderId status quantity
       limitPrice filledQuantity avgFillPrice createdNs reduceOnly eventCount } } pageInfo { hasNextPage endCursor } } }""",
    """query($s: String!) { orders(session: $s, first: 12) { edges { node { orderId history { eventType statusAfter
       logOffset } fills { price quantity fee liquidity } } } } }""",
    """query($s: String!) { a: orders(session: $s, first: 5) { edges { node { ...O } } } positions(session: $s) {
       __typename venue asset quantity avgCost realizedPnl updatedNs } }
       fragment O on Order { id: orderId side venue fees notional }""",
    """query($s: String!, $more: Boolean!) { orders(session: $s, first: 5) { edges { node { orderId
       status @include(if: $more) fills @skip(if: $more) { price } } } } }""",
    """query($s: String!) { sessions { sessionId mode digest inputEvents } riskState(session: $s) {
       killSwitchEngaged rejections lastBreachDrawdown } events(session: $s, first: 7) { edges { node { type offset
       eventId } } } }""",
]


def _services(read_models: Any) -> ApiServices:
    return ApiServices(read_models=read_models, series=None, open_log=None, feed=None, keys=None, jobs=None,
                       target="test")  # type: ignore[arg-type]  # fmt: skip


async def _both(services: ApiServices, query: str, variables: dict[str, Any]) -> tuple[Any, Any]:
    prepared = Documents(schema._schema).prepare(query, None)
    assert isinstance(prepared, Prepared), prepared
    principal = Principal("k", Role.viewer, "test")
    ours = run(schema._schema, prepared, variables, ApiContext(services, principal))
    if not isinstance(ours, ExecutionResult):
        ours = await ours
    theirs = await schema.execute(
        query, variable_values=variables, context_value=ApiContext(services, principal)
    )
    return ours, theirs


@pytest.mark.parametrize("more", [True, False])
def test_planned_execution_equals_strawberrys(tmp_path: Path, more: bool) -> None:
    settings = sample_home(tmp_path, orders=12)

    async def main() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{settings.home / 'read_models.sqlite'}")
        services = _services(SqlReadModels(engine))
        services.open_log = lambda: open_log(settings)
        try:
            for query in QUERIES:
                ours, theirs = await _both(services, query, {"s": SESSION, "more": more})
                assert theirs.errors is None, theirs.errors
                assert ours.errors is None and ours.data == theirs.data, query
                assert ours.data and any(ours.data.values())
        finally:
            await engine.dispose()

    asyncio.run(main())


class BrokenRows:
    """Read models answering a row a plan cannot complete (a null status, a non-null field) and failing."""

    async def orders(self, where: Any, first: int, after: Any, columns: Any = None) -> Page:
        good = {"order_id": "o1", "session_id": "s", "account": "a", "strategy_id": "x", "venue": "v",
                "instrument": "BTCUSDT", "side": "buy", "order_type": "limit", "time_in_force": "gtc",
                "quantity": Decimal("1"), "limit_price": Decimal("2"), "reduce_only": False, "status": "new",
                "venue_order_id": None, "filled_quantity": Decimal(0), "leaves_quantity": None,
                "avg_fill_price": None, "notional": Decimal(0), "fees": Decimal(0), "reason": "", "created_ns": 1,
                "updated_ns": 1, "event_count": 1}  # fmt: skip
        return Page([good, {**good, "order_id": "o2", "status": None, "created_ns": 2}], False)

    async def positions(self, session_id: str) -> list[dict[str, Any]]:
        raise RuntimeError("connection to db.internal:5432 refused (password=hunter2)")


def test_errors_are_graphql_cores_and_internal_ones_are_masked() -> None:
    services = _services(BrokenRows())

    async def main() -> None:
        query = 'query { orders(session: "s", first: 5) { edges { node { orderId status } } } }'
        ours, theirs = await _both(services, query, {})
        assert (
            ours.data is None and theirs.data is None
        )  # the null propagates to the root (orders is non-null)
        assert json.loads(response(ours.data, ours.errors))["errors"] == [e.formatted for e in theirs.errors]
        assert ours.errors[0].path == ["orders", "edges", 1, "node", "status"]
        assert (
            ours.errors[0].message == "Cannot return null for non-nullable field Order.status."
        )  # then masked
        ours, _ = await _both(services, 'query { positions(session: "s") { venue } }', {})
        body = response(ours.data, ours.errors).decode()
        assert MASKED in body and "hunter2" not in body and "db.internal" not in body

    asyncio.run(main())


def test_documents_are_prepared_once_and_the_cache_is_bounded() -> None:
    documents = Documents(schema._schema, size=3)
    first = documents.prepare("{ viewerRole }", None)
    assert isinstance(first, Prepared) and documents.prepare("{ viewerRole }", None) is first
    refused = documents.prepare("{ noSuchField }", None)
    assert isinstance(refused, list) and "noSuchField" in refused[0].message
    two = "query A { viewerRole } query B { sessions { sessionId } }"
    named = documents.prepare(two, "B")
    assert isinstance(named, Prepared) and named.operation.name.value == "B"  # type: ignore[union-attr]
    unnamed = documents.prepare(two, None)
    assert isinstance(unnamed, list) and "operationName" in unnamed[0].message
    assert len(documents._cache) == 3  # the oldest went
    assert documents.prepare("{ viewerRole }", None) is not first
    long = "{ viewerRole " + " " * CACHED_TEXT_LIMIT + "}"
    assert isinstance(documents.prepare(long, None), Prepared) and (long, None) not in documents._cache
    page = "orders(first: 500) { edges { node { fills { price fee venue side quantity asset account eventId } } } }"
    costly = documents.prepare(f"{{ a: {page} b: {page} c: {page} }}", None)
    assert isinstance(costly, list) and "limit is" in costly[0].message  # the cost limit still applies


def test_a_request_leaves_nothing_for_the_cyclic_collector(tmp_path: Path) -> None:
    """Everything a page request allocates is freed by reference counting when it ends: graphql-core's
    executor held bound methods of itself (a cycle keeping its context and dataloaders, 39 objects per
    request), which the server's full collections had to walk (adapters/api/heap.py). (The dataloaders'
    `IN` statements still leave SQLAlchemy's own bind-parameter cycles behind; the page has none.)"""
    settings = sample_home(tmp_path, orders=12)

    async def main() -> int:
        engine = make_engine(f"sqlite+aiosqlite:///{settings.home / 'read_models.sqlite'}")
        services = _services(SqlReadModels(engine))
        prepared = Documents(schema._schema).prepare(QUERIES[0], None)
        assert isinstance(prepared, Prepared)
        context = lambda: ApiContext(services, Principal("k", Role.viewer, "test"))  # noqa: E731
        try:
            for _ in range(3):  # warm: plans, statement caches, pooled connections
                await run(schema._schema, prepared, {"s": SESSION}, context())  # type: ignore[misc]
            gc.collect()
            gc.disable()
            try:
                for _ in range(20):
                    result = await run(schema._schema, prepared, {"s": SESSION}, context())  # type: ignore[misc]
                    assert not result.errors and result.data["orders"]["edges"]
                return gc.collect()
            finally:
                gc.enable()
        finally:
            await engine.dispose()

    assert asyncio.run(main()) < 20  # under one object per request (39 per request before)
