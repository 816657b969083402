"""Projections on the real PostgreSQL (deploy/local/postgres.sh): fold equality, a handler crashing mid-batch,
a server restart during projection, rebuild. Each test works in its own schema, dropped afterwards.
Fails (never skips) when the server is unreachable."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.entrypoints.bootstrap import projection_metrics
from adapters.observability.metrics import PROJECTION_LAG as LAG
from adapters.sqlite_event_log import SqliteEventLog
from projections import handlers
from projections.models import Base
from projections.projector import Backoff, SqlProjector
from projections.rebuild import rebuild
from projections.testing import (
    actual_read_models,
    assert_matches_fold,
    build_sample_session,
    dump,
    expected_read_models,
)
from tests.integration.pg_schema import migrated_schema

pytestmark = pytest.mark.integration

SESSION = "bt-pg"
PG_BIN = os.environ.get("CSE_PG_BIN", "/usr/lib/postgresql/15/bin")
RUN_DIR = Path(os.environ.get("CSE_RUN_DIR", "/tmp/cse-services"))


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    async with migrated_schema("t_proj") as eng:
        yield eng


@pytest.fixture
async def reference() -> AsyncIterator[AsyncEngine]:
    async with migrated_schema("t_ref") as eng:
        yield eng


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SqliteEventLog]:
    with SqliteEventLog(tmp_path / "events.sqlite") as event_log:
        build_sample_session(event_log, SESSION, orders=400)
        yield event_log


async def test_projection_equals_plain_fold_and_redelivery_is_a_no_op(
    engine: AsyncEngine, log: SqliteEventLog
) -> None:
    projector = SqlProjector(engine, log, batch_size=250)
    assert await projector.project_session(SESSION) == log.count(SESSION)
    assert_matches_fold(await actual_read_models(engine, SESSION), expected_read_models(log, SESSION))
    before = await dump(engine)
    assert await projector.project_session(SESSION) == 0
    derived = list(log.read(SESSION, "derived"))
    log.append(SESSION, [r.record for r in derived[:100]])  # the same events again, new offsets
    assert await projector.project_session(SESSION) == 100
    after = await dump(engine)
    assert {k: v for k, v in after.items() if k != "projection_tracking"} == {
        k: v for k, v in before.items() if k != "projection_tracking"
    }


async def test_handler_crash_mid_batch_rolls_back_the_whole_batch(
    engine: AsyncEngine, reference: AsyncEngine, log: SqliteEventLog
) -> None:
    await SqlProjector(reference, log, batch_size=500).project_session(SESSION)
    derived = list(log.read(SESSION, "derived"))
    # A fill in the middle of the third batch: the batch's earlier events are already applied in memory/SQL.
    poison = next(r.offset for r in derived if r.offset >= 1250 and r.record.event_type == "order.filled")
    registry = dict(handlers.REGISTRY)

    async def failing_fill(batch, event, stored):  # type: ignore[no-untyped-def]
        if stored.offset == poison:
            raise RuntimeError("killed mid-batch")
        await handlers.on_fill(batch, event, stored)

    registry["order.filled"] = failing_fill
    crashing = SqlProjector(engine, log, batch_size=500, registry=registry)
    definitions = [s for s in log.streams(SESSION) if s.startswith("md.")]  # first, as project_session does
    await crashing.project_session(SESSION, definitions)
    with pytest.raises(RuntimeError, match="killed mid-batch"):
        await crashing.project_stream(SESSION, "derived")
    assert await crashing.last_offset(SESSION, "derived") == 999
    async with engine.connect() as conn:
        t = Base.metadata.tables["order_events"]
        assert (await conn.execute(select(t.c.log_offset).where(t.c.log_offset >= 1000))).first() is None

    await SqlProjector(engine, log, batch_size=500).project_session(SESSION)
    assert await dump(engine) == await dump(reference)


def _restart_postgres() -> None:
    data_file = RUN_DIR / "postgres.data"
    if not data_file.exists():
        pytest.fail(f"{data_file} missing: start PostgreSQL with deploy/local/postgres.sh")
    data = Path(data_file.read_text().strip()) / "data"
    cmd = [f"{PG_BIN}/pg_ctl", "-D", str(data), "-l", str(RUN_DIR / "logs" / "postgres.log"), "-w", "-t", "60",
           "restart", "-m", "fast"]  # fmt: skip
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=90)
    # Keep deploy/local's pid file pointing at the new postmaster, so `postgres.sh stop` still works.
    (RUN_DIR / "postgres.pid").write_text((data / "postmaster.pid").read_text().splitlines()[0] + "\n")


async def test_postgres_restart_during_projection_loses_and_duplicates_nothing(
    engine: AsyncEngine, reference: AsyncEngine, log: SqliteEventLog
) -> None:
    await SqlProjector(reference, log, batch_size=100).project_session(SESSION)
    registry = dict(handlers.REGISTRY)

    async def slow_accept(batch, event, stored):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.002)  # keep the projection running long enough to be cut by the restart
        await handlers.on_order_accepted(batch, event, stored)

    registry["order.accepted"] = slow_accept
    projector = SqlProjector(engine, log, batch_size=100, registry=registry, metrics=projection_metrics(),
                             backoff=Backoff(initial=0.05, cap=1.0, max_elapsed=120))  # fmt: skip
    definitions = [s for s in log.streams(SESSION) if s.startswith("md.")]  # first, as project_session does
    await SqlProjector(engine, log, batch_size=100).project_session(SESSION, definitions)
    task = asyncio.create_task(projector.project_stream(SESSION, "derived"))
    while projector.batches_committed < 3:
        assert not task.done(), "projection finished before the restart"
        await asyncio.sleep(0.005)
    await asyncio.to_thread(_restart_postgres)
    lag_during = LAG.labels("read_models", "derived")._value.get()
    await asyncio.wait_for(task, 180)
    assert projector.retries > 0, "the restart did not interrupt the projection"
    assert lag_during > 0
    assert LAG.labels("read_models", "derived")._value.get() == 0
    await projector.project_session(SESSION)
    assert await dump(engine) == await dump(reference)
    assert_matches_fold(await actual_read_models(engine, SESSION), expected_read_models(log, SESSION))


async def test_rebuild_gives_identical_rows_while_queries_keep_working(
    engine: AsyncEngine, log: SqliteEventLog
) -> None:
    build_sample_session(log, "other", orders=40, seed=11)
    projector = SqlProjector(engine, log)
    await projector.project_session(SESSION)
    await projector.project_session("other")
    before = await dump(engine)

    stop = asyncio.Event()
    reads = 0

    async def reader() -> None:
        nonlocal reads
        orders = Base.metadata.tables["orders"]
        while not stop.is_set():
            async with engine.connect() as conn:
                n = len((await conn.execute(select(orders.c.order_id))).all())
            assert n == len(before["orders"])
            reads += 1
            await asyncio.sleep(0.01)

    reading = asyncio.create_task(reader())
    assert await rebuild(engine, log, SESSION, batch_size=300) == log.count(SESSION)
    stop.set()
    await reading
    assert reads > 0
    assert await dump(engine) == before
    assert await projector.project_session(SESSION) == 0


async def test_a_large_session_projects_completely(engine: AsyncEngine, tmp_path: Path) -> None:
    """~48k records in batches of 1,000; the rate is printed for information (targets: docs/benchmarks.md)."""
    with SqliteEventLog(tmp_path / "big.sqlite") as big:
        records = build_sample_session(big, "big", orders=2800, quotes_per_order=6, seed=5)
        derived = big.count("big", "derived")
        started = time.perf_counter()
        assert await SqlProjector(engine, big, batch_size=1000).project_session("big") == records
        elapsed = time.perf_counter() - started
    print(f"\nPostgreSQL projection: {records} records ({derived} with read-model handlers) in {elapsed:.2f}s: "
          f"{records / elapsed:,.0f} records/s, {derived / elapsed:,.0f} order/risk/signal events/s")  # fmt: skip
    assert records >= 40_000


async def test_a_poison_record_is_set_aside_in_postgres_and_the_projection_goes_on(
    engine: AsyncEngine, log: SqliteEventLog
) -> None:
    from application.ports import LogRecord
    from projections.models import DEAD_LETTER_TABLE

    expected = expected_read_models(log, SESSION)
    derived = list(log.read(SESSION, "derived"))
    poison = LogRecord("derived", "k", "order.filled", derived[-1].record.event_time_ns, b"\x00\xffnot json")
    offset = log.append(SESSION, [poison])[0]
    log.append(SESSION, [r.record for r in derived[-25:]])
    projector = SqlProjector(engine, log, batch_size=100)
    assert await projector.project_session(SESSION) == log.count(SESSION)
    await SqlProjector(engine, log, batch_size=7).project_session(SESSION)  # caught up: adds nothing
    assert_matches_fold(await actual_read_models(engine, SESSION), expected)
    table = Base.metadata.tables[DEAD_LETTER_TABLE]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(table))).all()
    assert [(r.stream, r.offset, r.event_type, r.payload) for r in rows] == [
        ("derived", offset, "order.filled", poison.payload)
    ]
    assert "not JSON" in rows[0].reason and projector.dead_letters == 1
