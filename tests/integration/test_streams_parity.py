"""Replay parity on the real broker: the embedded backtest, the Kafka replay and the Faust agent give the
same digest of derived events on the shipped Binance sample (spot + USD-M BTCUSDT, ~43k inputs)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapters.entrypoints.commands import SAMPLES, load_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.market_core import compiled_core
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
from application.session_run import RunParameters, market_data_streams
from streams.app import build_app
from streams.digest import derived_digest
from streams.kafka_event_log import KafkaEventLog
from streams.record import record_session
from streams.replay import replay_from_kafka
from streams.topics import TopicConfig, Topics, create_topics
from streams.worker import default_target

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BOOTSTRAP = os.environ.get("CSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
CAPTURES = [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
            SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"]  # fmt: skip
IMPORTED = "binance-btcusdt-20240808"
BATCH_SIZES = [1, 7, 5000]  # md messages per agent batch: one by one, batches cut mid-burst, whole fetches


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    log = SqliteEventLog(Path(tmp_path_factory.mktemp("parity")) / "events.sqlite")
    import_binance_ws(log, IMPORTED, CAPTURES, code_version=lambda: "test")
    config = load_run_config(SAMPLES / "spread-demo.toml")
    parameters = RunParameters(IMPORTED, market_data_streams(log, IMPORTED), config)
    # The worker's target session name, so the embedded run derives the very same event ids.
    session_id = default_target(config)(IMPORTED)
    result = run_backtest(log, parameters, session_id, simulated_venues, "test")
    assert result.derived > 100, "the sample should trade"
    return {"log": log, "config": config, "result": result}


def fresh_topics(partitions: int = 3) -> Topics:
    prefix = f"cse-it-{uuid.uuid4().hex[:10]}"
    created = create_topics(
        BOOTSTRAP, TopicConfig(prefix=prefix, partitions=partitions)
    )  # fails if no broker
    assert set(created.values()) == {"created"}
    assert set(create_topics(BOOTSTRAP, TopicConfig(prefix=prefix, partitions=partitions)).values()) == {
        "exists"
    }
    return Topics(prefix)


def test_replay_from_kafka_matches_embedded_backtest(embedded: dict[str, Any]) -> None:
    topics = fresh_topics()
    result = embedded["result"]
    kafka = KafkaEventLog(BOOTSTRAP, topics, account=embedded["config"].account)
    recorded = record_session(embedded["log"], kafka, result.session_id)
    assert recorded.inputs == result.inputs
    print(
        f"record: {recorded.inputs + recorded.others} msgs in {recorded.seconds:.2f}s = {recorded.rate:,.0f}/s"
    )

    started = time.perf_counter()
    report = replay_from_kafka(KafkaEventLog(BOOTSTRAP, topics), result.session_id, simulated_venues, "test")
    seconds = time.perf_counter() - started
    print(
        f"replay --source kafka: {result.inputs} inputs in {seconds:.2f}s = {result.inputs / seconds:,.0f}/s"
    )
    assert report.ok, report
    assert report.events_checked == result.derived
    assert report.replayed_digest == report.recorded_digest == result.digest


@pytest.mark.parametrize(("batch_size", "core"), [(size, "compiled") for size in BATCH_SIZES] + [(7, "kernel")])
async def test_faust_agent_derives_the_embedded_digest(embedded: dict[str, Any], batch_size: int, core: str) -> None:
    """The agent feeds each batch to the compiled market core (the kernel at wakes only), as `cse worker` does
    by default; one run keeps the reference path (every input through the kernel)."""
    topics = await asyncio.to_thread(fresh_topics)
    result, config = embedded["result"], embedded["config"]
    kafka = KafkaEventLog(BOOTSTRAP, topics, account=config.account)
    # Publish the *imported* inputs only: the agent re-stamps them into the target session itself.
    recorded = record_session(
        embedded["log"], kafka, IMPORTED, inputs_only=True
    )  # blocking: before the app starts
    assert recorded.inputs == result.inputs

    done = asyncio.Event()

    def on_processed(kernels: Any) -> None:
        if kernels.inputs >= result.inputs:
            done.set()

    app, kernels = build_app(config, simulated_venues, BOOTSTRAP, topics, app_id=f"{topics.prefix}-kernel",
                             loop=asyncio.get_running_loop(), on_processed=on_processed,
                             batch_size=batch_size, core=compiled_core if core == "compiled" else None)  # fmt: skip
    app.finalize()
    started = time.perf_counter()
    await asyncio.wait_for(app.start(), timeout=90)
    try:
        await asyncio.wait_for(done.wait(), timeout=300)
        await app.cse_settle()
        await app.producer.flush()
    finally:
        await asyncio.wait_for(app.stop(), timeout=60)
    seconds = time.perf_counter() - started
    print(
        f"faust agent ({core}), batches of {batch_size}: {kernels.inputs} ticks in {seconds:.2f}s = {kernels.inputs / seconds:,.0f}/s end to end"
    )

    got = await asyncio.to_thread(derived_digest, BOOTSTRAP, topics, result.session_id)
    assert got.events == result.derived and got.gaps == 0
    assert got.digest == result.digest
