"""Real broker: dead letters keep the stream going; an outside consumer (kcat) reads our topics and every
message validates against docs/events/schemas."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapters.entrypoints.commands import SAMPLES, load_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
from application.session_run import RunParameters, market_data_streams
from streams.app import build_app
from streams.kafka_event_log import KafkaEventLog
from streams.kafka_io import EventProducer, scan
from streams.record import record_session
from streams.serialization import (
    H_DLQ_OFFSET,
    H_DLQ_PARTITION,
    H_DLQ_REASON,
    H_DLQ_TOPIC,
    H_SESSION,
    H_STREAM,
    header_map,
)
from streams.topics import TopicConfig, Topics, create_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BOOTSTRAP = os.environ.get("CSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events" / "schemas"
SESSION = "binance-btcusdt-20240808"


@pytest.fixture(scope="module")
def sample_log(tmp_path_factory: pytest.TempPathFactory) -> SqliteEventLog:
    log = SqliteEventLog(Path(tmp_path_factory.mktemp("dlq")) / "events.sqlite")
    import_binance_ws(log, SESSION, [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
                                     SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"],
                      code_version=lambda: "test")  # fmt: skip
    return log


def fresh_topics() -> Topics:
    prefix = f"cse-it-{uuid.uuid4().hex[:10]}"
    create_topics(BOOTSTRAP, TopicConfig(prefix=prefix, partitions=1))
    return Topics(prefix)


async def test_malformed_messages_go_to_the_dlq_and_the_stream_continues(sample_log: SqliteEventLog) -> None:
    topics = fresh_topics()
    kafka = KafkaEventLog(BOOTSTRAP, topics)
    inputs = sample_log.read(SESSION, "md.binance-spot.BTCUSDT")
    first = [next(inputs) for _ in range(300)]
    kafka.publish(SESSION, first[:100])
    bad = [
        (b"not json at all {", "not JSON"),
        (b'{"type":"market.nope","schema_version":1}', "unknown event type"),
    ]
    producer = EventProducer(BOOTSTRAP)
    for value, _ in bad:
        producer.produce(
            topics.md, value, b"BTCUSDT", [(H_SESSION, SESSION.encode()), (H_STREAM, b"md.x.BTCUSDT")]
        )
    producer.flush()
    kafka.publish(SESSION, first[100:])

    config = load_run_config(SAMPLES / "spread-demo.toml")
    done = asyncio.Event()
    app, kernels = build_app(config, simulated_venues, BOOTSTRAP, topics, loop=asyncio.get_running_loop(),
                             on_processed=lambda k: k.inputs + k.dead_letters >= 302 and done.set())  # fmt: skip
    app.finalize()
    await asyncio.wait_for(app.start(), timeout=90)
    try:
        await asyncio.wait_for(done.wait(), timeout=180)
        await app.cse_settle()
        await app.producer.flush()
    finally:
        await asyncio.wait_for(app.stop(), timeout=60)
    assert kernels.inputs == 300 and kernels.dead_letters == 2  # the good messages after the bad ones ran

    letters = await asyncio.to_thread(lambda: list(scan(BOOTSTRAP, [topics.dlq])))
    assert [m.value() for m in letters] == [value for value, _ in bad]  # original bytes
    for msg, (_, reason) in zip(letters, bad, strict=True):
        headers = header_map(msg.headers())
        assert reason in headers[H_DLQ_REASON].decode()
        assert headers[H_DLQ_TOPIC].decode() == topics.md and headers[H_DLQ_PARTITION] == b"0"
    assert [int(header_map(m.headers())[H_DLQ_OFFSET]) for m in letters] == [100, 101]


def test_kcat_reads_our_topics_and_every_message_validates(sample_log: SqliteEventLog) -> None:
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed (Debian package `kcat`)"
    topics = fresh_topics()
    config = load_run_config(SAMPLES / "spread-demo.toml")
    parameters = RunParameters(SESSION, market_data_streams(sample_log, SESSION), config)
    bt = f"{SESSION}.kcat-{uuid.uuid4().hex[:6]}"
    run_backtest(sample_log, parameters, bt, simulated_venues, "test")
    recorded = record_session(sample_log, KafkaEventLog(BOOTSTRAP, topics, account=config.account), bt)

    validators: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for topic in topics.event_topics():
        out = subprocess.run([kcat, "-C", "-b", BOOTSTRAP, "-t", topic, "-o", "beginning", "-e", "-q", "-J"],
                             capture_output=True, timeout=120, check=True).stdout  # fmt: skip
        for line in out.decode().splitlines():
            message = json.loads(line)
            headers = dict(zip(message["headers"][::2], message["headers"][1::2], strict=True)) if message.get(
                "headers") else {}  # fmt: skip
            if "cse-control" in headers:
                continue  # end-of-session control records carry no event
            event = json.loads(message["payload"])
            assert headers["cse-type"] == event["type"]
            assert headers["traceparent"].startswith("00-")
            if event["type"] not in validators:
                validators[event["type"]] = jsonschema.Draft202012Validator(
                    json.loads((SCHEMAS / f"{event['type']}.json").read_text())
                )
            validators[event["type"]].validate(event)
            counts[topic] = counts.get(topic, 0) + 1
    assert sum(counts.values()) == recorded.inputs + recorded.others
    merge_chunks = sample_log.end_offset(bt, "merge")  # the recorded merge order, on the session topic too
    assert merge_chunks >= 1
    assert counts[topics.md] == recorded.inputs and counts[topics.session] == 2 + merge_chunks
