"""Real Kafka broker: confluent-kafka round trip and an in-process faust worker."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import faust
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

N = 50


def create_topics(bootstrap: str, *topics: str) -> None:
    """Create topics (1 partition) and wait; raises if the broker is unreachable."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.list_topics(timeout=15)  # KafkaException "Transport" error when no broker answers
    for topic, fut in admin.create_topics([NewTopic(t, 1, 1) for t in topics], operation_timeout=30).items():
        fut.result(timeout=30)
        assert topic in topics


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    errors: list[Any] = []
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    )
    for key, value, headers in records:
        producer.produce(
            topic,
            value=value,
            key=key,
            headers=headers,
            on_delivery=lambda err, _msg: err and errors.append(err),
        )
        producer.poll(0)
    assert producer.flush(30) == 0, "messages still queued after 30 s"
    assert errors == []


def consume_all(bootstrap: str, topic: str, n: int, timeout: float = 60.0) -> list[Message]:
    """Read the first n messages of partition 0 (no consumer group rebalance needed)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"it-reader-{topic}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            out.append(msg)
    finally:
        consumer.close()
    assert len(out) == n, f"got {len(out)} of {n} messages from {topic} within {timeout}s"
    return out


def test_confluent_roundtrip_in_order(kafka_bootstrap: str, unique_name: str) -> None:
    topic = f"cse-it-rt-{unique_name}"
    create_topics(kafka_bootstrap, topic)
    sent = [
        (
            f"BTC-USD-{i % 3}".encode(),
            json.dumps({"seq": i, "px": f"{100 + i}.5"}).encode(),
            [("event-type", b"PriceTick"), ("seq", str(i).encode())],
        )
        for i in range(N)
    ]
    produce(kafka_bootstrap, topic, sent)

    got = consume_all(kafka_bootstrap, topic, N)
    assert [m.offset() for m in got] == list(range(N))
    assert [(m.key(), m.value(), m.headers()) for m in got] == sent


async def test_faust_agent_transforms_to_output_topic(kafka_bootstrap: str, unique_name: str) -> None:
    src_name, dst_name = f"cse-it-faust-in-{unique_name}", f"cse-it-faust-out-{unique_name}"
    # faust only subscribes to topics that exist when the worker starts.
    await asyncio.to_thread(create_topics, kafka_bootstrap, src_name, dst_name)
    quotes = [
        (f"k{i}".encode(), {"seq": i, "bid": f"{100 + i}.25", "ask": f"{100 + i}.75"}) for i in range(N)
    ]
    await asyncio.to_thread(
        produce, kafka_bootstrap, src_name, [(k, json.dumps(v).encode(), []) for k, v in quotes]
    )

    app = faust.App(
        f"cse-it-{unique_name}",
        broker=f"kafka://{kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        topic_partitions=1,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        loop=asyncio.get_running_loop(),
    )
    src = app.topic(src_name, key_serializer="raw", value_serializer="json")
    dst = app.topic(dst_name, key_serializer="raw", value_serializer="json")
    done = asyncio.Event()
    seen: list[int] = []

    @app.agent(src)
    async def spreads(stream: Any) -> None:
        async for key, quote in stream.items():
            spread = Decimal(quote["ask"]) - Decimal(quote["bid"])
            await dst.send(key=key, value={"seq": quote["seq"], "spread": str(spread)})
            seen.append(quote["seq"])
            if len(seen) == N:
                done.set()

    app.finalize()
    await asyncio.wait_for(app.start(), timeout=60)
    try:
        await asyncio.wait_for(done.wait(), timeout=120)
        await app.producer.flush()
    finally:
        await asyncio.wait_for(app.stop(), timeout=60)
    assert seen == list(range(N))

    got = await asyncio.to_thread(consume_all, kafka_bootstrap, dst_name, N)
    assert [(m.key(), json.loads(m.value())) for m in got] == [
        (k, {"seq": v["seq"], "spread": "0.50"}) for k, v in quotes
    ]
