"""confluent-kafka producer and partition scanning shared by the event log, `cse record`, the DLQ and tests.

Producer settings (`PRODUCER_DEFAULTS`): idempotent (`enable.idempotence=true`, which implies acks=all and
in-flight <= 5, so retries never duplicate or reorder within a partition), murmur2 partitioner (the same
key -> partition mapping as the Java clients and Faust/aiokafka). linger/batch/compression were chosen by
measurement (docs/topics.md, "Producer settings"): linger.ms=20, batch.size=1 MiB, no compression.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "partitioner": "murmur2_random",
    "linger.ms": 20,
    "batch.size": 1_048_576,
    "compression.type": "none",  # lz4 is faster (166k/s) but aiokafka (Faust) cannot read it without python-lz4
    "queue.buffering.max.messages": 500_000,
    "message.timeout.ms": 60_000,
}


class DeliveryError(RuntimeError):
    pass


class EventProducer:
    """An idempotent producer that remembers delivery failures; `flush` raises if any message failed."""

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        self.config = {"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS, **overrides}
        self._producer = Producer(self.config)
        self._errors: list[str] = []
        self.sent = 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def produce(self, topic: str, value: bytes | None, key: bytes | None = None,
                headers: list[tuple[str, bytes]] | None = None, partition: int | None = None) -> None:  # fmt: skip
        kwargs: dict[str, Any] = {
            "value": value,
            "key": key,
            "headers": headers,
            "on_delivery": self._on_delivery,
        }
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self._producer.produce(topic, **kwargs)
                break
            except BufferError:
                self._producer.poll(0.05)
        self.sent += 1
        self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            raise DeliveryError(f"{remaining} message(s) not delivered within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryError(f"{len(errors)} delivery failure(s), first: {errors[0]}")

    def partitions_for(self, topic: str) -> int:
        return len(self._producer.list_topics(topic, timeout=15).topics[topic].partitions)

    @property
    def raw(self) -> Producer:
        return self._producer


def make_consumer(bootstrap: str, group: str = "cse-reader", **overrides: Any) -> Consumer:
    config = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
              "isolation.level": "read_committed", "auto.offset.reset": "earliest", **overrides}  # fmt: skip
    return Consumer(config)


def partitions_of(consumer: Consumer, topic: str, timeout: float = 15.0) -> list[int]:
    meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None:
        raise KafkaException(meta.error if meta is not None else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    return sorted(meta.partitions)


def scan(bootstrap: str, topics: Iterable[str], batch: int = 2_000, timeout: float = 60.0,
         partitions: dict[str, list[int]] | None = None) -> Iterator[Message]:  # fmt: skip
    """Every message of the topics (all partitions, or the given ones) from the beginning up to the end they
    had when the scan started. Order: per partition by offset; partitions interleave."""
    consumer = make_consumer(bootstrap)
    try:
        ends: dict[tuple[str, int], int] = {}
        assignment: list[TopicPartition] = []
        for topic in topics:
            for p in (partitions or {}).get(topic) or partitions_of(consumer, topic):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
                if high > low:
                    ends[(topic, p)] = high
                    assignment.append(TopicPartition(topic, p, OFFSET_BEGINNING))
        if not assignment:
            return
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout
        while ends:
            messages = consumer.consume(batch, 1.0)
            if not messages:
                # transaction markers / compacted gaps: a partition whose position reached its end is done
                for tp in consumer.position([TopicPartition(t, p) for t, p in ends]):
                    if tp.offset >= 0 and tp.offset >= ends[(tp.topic, tp.partition)]:
                        del ends[(tp.topic, tp.partition)]
                if ends and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"scan stalled with {len(ends)} partition(s) short of their end: {ends}"
                    )
                continue
            deadline = time.monotonic() + timeout
            for msg in messages:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(err)
                tp = (msg.topic(), msg.partition())
                end = ends.get(tp)
                if end is None:
                    continue
                yield msg
                if msg.offset() + 1 >= end:
                    del ends[tp]
    finally:
        consumer.close()


def topic_partitions(bootstrap: str, topic: str) -> list[int]:
    consumer = make_consumer(bootstrap)
    try:
        return partitions_of(consumer, topic)
    finally:
        consumer.close()


def read_partition(
    bootstrap: str, topic: str, partition: int, end: int, start: int = 0, timeout: float = 60.0
) -> list[Message]:
    """Messages [start, end) of one partition (the worker's re-run after a restore or from scratch)."""
    if end <= start:
        return []
    consumer = make_consumer(bootstrap)
    out: list[Message] = []
    try:
        consumer.assign([TopicPartition(topic, partition, start if start > 0 else OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while True:
            messages = consumer.consume(2_000, 1.0)
            for msg in messages:
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(msg.error())
                if msg.offset() >= end:
                    return out
                out.append(msg)
                if msg.offset() + 1 >= end:
                    return out
            if not messages and time.monotonic() > deadline:
                raise TimeoutError(f"{topic}[{partition}]: got {len(out)} of {end - start} messages")
    finally:
        consumer.close()
