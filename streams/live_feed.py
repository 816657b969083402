"""`application.live_feed.SessionFeed` on the Kafka topics: the consumer the API process runs in production.

`follow` assigns every partition of the event topics at their end (or beginning) without a consumer group
(each API process sees everything; nothing is committed), polls in a thread so the event loop stays free,
and keeps the messages of the session (the `cse-session` header). `replay` reads the session once and paces
it by event time like the embedded feed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

from application.live_feed import FeedItem, paced
from application.ports import LogRecord
from streams.kafka_io import make_consumer, partitions_of, scan
from streams.serialization import H_LOG_KEY, H_OFFSET, H_SESSION, H_STREAM, H_TIME, H_TYPE, header_map
from streams.topics import Topics


class KafkaFeed:
    def __init__(self, bootstrap: str, topics: Topics | None = None, poll_seconds: float = 0.2) -> None:
        self.bootstrap = bootstrap
        self.topics = topics or Topics()
        self.poll_seconds = poll_seconds

    async def follow(self, session_id: str, *, from_start: bool = False) -> AsyncIterator[FeedItem]:
        consumer = make_consumer(self.bootstrap, group=f"cse-api-{uuid.uuid4()}")
        try:
            start = OFFSET_BEGINNING if from_start else OFFSET_END
            consumer.assign([TopicPartition(t, p, start) for t in self.topics.event_topics()
                             for p in partitions_of(consumer, t)])  # fmt: skip
            wanted = session_id.encode()
            while True:
                # poll returns at the first message (consume(n, timeout) would wait for n or the timeout),
                # then whatever else has arrived is taken without waiting
                first = await asyncio.to_thread(consumer.poll, self.poll_seconds)
                if first is None:
                    continue
                for msg in [first, *consumer.consume(500, 0)]:
                    if msg.error() is not None:
                        continue
                    item = _item(header_map(msg.headers()), msg.value(), wanted)
                    if item is not None:
                        yield item
        finally:
            consumer.close()

    async def replay(self, session_id: str, speed: float) -> AsyncIterator[FeedItem]:
        wanted = session_id.encode()
        found = await asyncio.to_thread(
            lambda: [i for m in scan(self.bootstrap, self.topics.event_topics())
                     if (i := _item(header_map(m.headers()), m.value(), wanted)) is not None]
        )  # fmt: skip
        # re-published copies of a (stream, offset) count once; order as the embedded log would give
        unique = {(i.record.stream, i.offset): i for i in reversed(found)}
        ordered = sorted(unique.values(), key=lambda i: (i.record.event_time_ns, i.record.stream, i.offset))
        async for item in paced(((i.record.event_time_ns, i) for i in ordered), speed):
            yield item


def _item(headers: dict[str, bytes], value: bytes | None, session: bytes) -> FeedItem | None:
    if headers.get(H_SESSION) != session or H_STREAM not in headers or value is None:
        return None
    record = LogRecord(headers[H_STREAM].decode(), headers.get(H_LOG_KEY, b"").decode(),
                       headers[H_TYPE].decode(), int(headers[H_TIME]), value)  # fmt: skip
    return FeedItem(session.decode(), int(headers[H_OFFSET]), record)
