"""The API's queries against the real PostgreSQL read models, through the running server (uvicorn)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from adapters.api.jobs import BacktestJobs
from adapters.api.keys import KeyStore
from adapters.api.services import ApiServices
from adapters.entrypoints.api_commands import read_engine, run_backtest_job
from adapters.entrypoints.commands import open_log
from adapters.log_feed import LogFeed
from adapters.settings import Settings
from projections.projector import project
from projections.queries import SqlReadModels
from projections.schema import make_engine, migrate
from projections.series_queries import SqlSeries
from projections.testing import build_sample_session, expected_read_models
from tests.api_support import SESSION, running_server


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    settings = Settings(home=tmp_path_factory.mktemp("api-pg"))
    with open_log(settings) as log:
        build_sample_session(log, SESSION, orders=30)
    dsn = Settings().pg_dsn
    schema = f"api_{uuid.uuid4().hex[:12]}"

    async def setup() -> None:
        engine = make_engine(dsn, schema=schema)
        try:
            await migrate(engine, schema=schema)
            with open_log(settings) as log:
                await project(engine, log, SESSION)
        finally:
            await engine.dispose()

    async def drop() -> None:
        engine = make_engine(dsn)
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()

    try:
        asyncio.run(setup())
    except OSError as exc:
        pytest.fail(f"PostgreSQL at {dsn} unreachable ({exc!r}); run `bash deploy/local/services.sh start`")
    # the server's engine, as `cse serve` makes it, is made here and first connects inside the server's loop
    engine = read_engine(dsn, schema=schema)
    services = ApiServices(read_models=SqlReadModels(engine), series=SqlSeries(engine),
                           open_log=lambda: open_log(settings), feed=LogFeed(settings.event_log_path),
                           keys=KeyStore(settings.api_keys_path), jobs=BacktestJobs(run_backtest_job),
                           target="postgres")  # fmt: skip
    try:
        with running_server(settings, services) as server:
            yield server, settings
    finally:
        asyncio.run(drop())


def test_positions_and_orders_from_postgres_equal_the_fold(pg_server: Any) -> None:
    server, settings = pg_server
    with open_log(settings) as log:
        expected = expected_read_models(log, SESSION)
    body = server.post("query($s: String!) { positions(session: $s) { account venue asset quantity realizedPnl } "
                       "orders(session: $s, first: 500) { edges { node { orderId status filledQuantity } } } }",
                       {"s": SESSION})  # fmt: skip
    assert "errors" not in body, body
    positions = {
        (p["account"], p["venue"], p["asset"]): Decimal(p["quantity"]) for p in body["data"]["positions"]
    }
    assert positions and positions == {k: v["quantity"] for k, v in expected["positions"].items()}
    orders = {e["node"]["orderId"]: e["node"]["status"] for e in body["data"]["orders"]["edges"]}
    assert orders == {str(k): v["status"] for k, v in expected["orders"].items()}


def test_filters_and_cursor_pages_on_postgres(pg_server: Any) -> None:
    server, settings = pg_server
    with open_log(settings) as log:
        filled = {
            str(k) for k, v in expected_read_models(log, SESSION)["orders"].items() if v["status"] == "filled"
        }
    query = """query($s: String!, $after: String) { orders(session: $s, status: "filled", first: 4, after: $after) {
      edges { cursor node { orderId status createdNs } } pageInfo { hasNextPage endCursor } } }"""
    seen, after = [], None
    while True:
        page = server.post(query, {"s": SESSION, "after": after})["data"]["orders"]
        seen += page["edges"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    # every filled order once, in the keyset order (creation time, then id) across the pages
    assert [e["node"]["orderId"] for e in seen] != [] and {e["node"]["orderId"] for e in seen} == filled
    keys = [(int(e["node"]["createdNs"]), uuid.UUID(e["node"]["orderId"])) for e in seen]
    assert keys == sorted(keys) and len(set(keys)) == len(keys) == len(filled)


def test_a_read_survives_the_server_closing_its_connection(pg_server: Any) -> None:
    """PostgreSQL restarted or an idle connection killed: the next read runs again on a new connection (the
    pool's connections are not pinged before use), not an error to the client."""
    server, _ = pg_server
    query = "query($s: String!) { orders(session: $s, first: 3) { edges { node { orderId } } } }"
    first = server.post(query, {"s": SESSION})
    assert "errors" not in first, first

    async def terminate() -> int:
        engine = make_engine(Settings().pg_dsn)
        async with engine.connect() as conn:
            killed = await conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND datname = current_database() AND query LIKE '%FROM orders%'"))  # fmt: skip
            count = len(killed.all())
        await engine.dispose()
        return count

    assert asyncio.run(terminate()) >= 1
    again = server.post(query, {"s": SESSION})
    assert again == first
