"""`application.ports.EventLog` on Kafka topics (production), as far as Kafka allows.

Mapping of log streams to topics and keys (`streams.topics.route`):
- `md.{venue}.{instrument}[.part]` -> `{prefix}.md`, key = instrument (all venues of an instrument in one
  partition, in publication order);
- `session` -> `{prefix}.session`, key = session id;
- `derived` (and any other stream) -> by event type: `signal.*`/`market.*` -> `{prefix}.signals` (key
  instrument), `command.*` -> `.commands`, `order.*` -> `.orders`, `risk.*` -> `.risk`, `portfolio.*` ->
  `.portfolio` (key account).
  The operator commands' stream `commands` is read from `.commands` alone (a `cse command` looks up the
  next sequence there, without scanning the other topics).
Each message carries its log position in headers (`cse-session`, `cse-stream`, `cse-offset`, ...;
see `streams.serialization`), so a session is a set of (stream, offset) -> record over shared topics.

- `append` = produce the batch and flush: it returns once every record is acknowledged by all in-sync
  replicas (idempotent producer, acks=all). It is NOT all-or-nothing across a batch (that needs Kafka
  transactions and read_committed readers; not wired yet): a failed append may have written a prefix,
  and re-appending it gives the same (stream, offset) pairs, which readers de-duplicate.
- `read`/`streams`/`sessions`/`end_offset` scan the topics from the beginning up to their current end and
  filter by the session header (no per-session index yet: O(topic size) per call; fine for sessions of
  ~10^5-10^6 events, a session index topic is the next step). `read` returns records in offset order,
  keeping the first copy of a duplicated (stream, offset).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

from application.operator_commands import COMMANDS_STREAM
from application.ports import LogRecord, StoredRecord, Tracer
from streams.kafka_io import EventProducer, scan
from streams.serialization import (
    H_LOG_KEY,
    H_OFFSET,
    H_SESSION,
    H_STREAM,
    H_TIME,
    H_TYPE,
    header_map,
    to_message,
    with_traceparent,
)
from streams.topics import COMMANDS, MD, SESSION, Topics, route


class KafkaEventLog:
    def __init__(self, bootstrap: str, topics: Topics | None = None, account: str = "default",
                 producer: EventProducer | None = None, tracer: Tracer | None = None) -> None:  # fmt: skip
        self.bootstrap = bootstrap
        self.tracer = tracer if tracer is not None and tracer.enabled else None
        self.topics = topics or Topics()
        self.account = account
        self._producer = producer
        self._next: dict[tuple[str, str], int] = {}

    @property
    def producer(self) -> EventProducer:
        if self._producer is None:
            self._producer = EventProducer(self.bootstrap)
        return self._producer

    # -- writing ---------------------------------------------------------------------------------------

    def publish(self, session_id: str, stored: Iterable[StoredRecord], flush: bool = True) -> int:
        """Produce records with the offsets they already have (e.g. copied from the SQLite log)."""
        count = 0
        for item in stored:
            msg = to_message(session_id, item, self.account)
            if self.tracer is not None:  # the publishing span, a child of the event's own trace context
                with self.tracer.consume("log.publish", header_map(msg.headers), {"cse.stream": item.record.stream}):
                    msg = with_traceparent(msg, self.tracer.traceparent())
            self.producer.produce(self.topics.name(msg.topic_suffix), msg.value, msg.key, msg.headers)
            key = (session_id, item.record.stream)
            self._next[key] = max(self._next.get(key, 0), item.offset + 1)
            count += 1
        if flush:
            self.producer.flush()
        return count

    def append(self, session_id: str, records: Sequence[LogRecord]) -> list[int]:
        offsets: list[int] = []
        stored: list[StoredRecord] = []
        for record in records:
            offset = self.end_offset(session_id, record.stream)
            self._next[(session_id, record.stream)] = offset + 1
            offsets.append(offset)
            stored.append(StoredRecord(offset, record))
        self.publish(session_id, stored)
        return offsets

    # -- reading ---------------------------------------------------------------------------------------

    def _topic_of_stream(self, session_id: str, stream: str) -> list[str]:
        if stream.startswith("md."):
            return [self.topics.name(MD)]
        if stream == "session":
            return [self.topics.name(SESSION)]
        if stream == COMMANDS_STREAM:  # operator commands: all command.*, so all on the commands topic
            return [self.topics.name(COMMANDS)]
        return self.topics.derived()

    def _records(
        self, topics: list[str], session_id: str | None = None
    ) -> Iterator[tuple[dict[str, bytes], bytes]]:
        wanted = session_id.encode() if session_id is not None else None
        for msg in scan(self.bootstrap, topics):
            headers = header_map(msg.headers())
            if H_STREAM not in headers or H_SESSION not in headers:
                continue
            if wanted is not None and headers[H_SESSION] != wanted:
                continue
            yield headers, msg.value()

    def read(self, session_id: str, stream: str, from_offset: int = 0) -> Iterator[StoredRecord]:
        wanted = stream.encode()
        topics = self._topic_of_stream(session_id, stream)
        single_partition = stream.startswith("md.") or stream == "session"  # one key: one partition, in order
        found: dict[int, StoredRecord] = {}
        last = from_offset - 1
        for headers, value in self._records(topics, session_id):
            if headers[H_STREAM] != wanted:
                continue
            offset = int(headers[H_OFFSET])
            if offset < from_offset or (single_partition and offset <= last) or offset in found:
                continue  # duplicates (re-published records) keep their first copy
            record = LogRecord(stream, headers.get(H_LOG_KEY, b"").decode(), headers[H_TYPE].decode(),
                               int(headers[H_TIME]), value)  # fmt: skip
            if single_partition:
                last = offset
                yield StoredRecord(offset, record)
            else:
                found[offset] = StoredRecord(offset, record)
        # `derived` spans topics and keys: gathered, then sorted by offset (in memory).
        yield from (found[o] for o in sorted(found))

    def streams(self, session_id: str) -> list[str]:
        names = {h[H_STREAM].decode() for h, _ in self._records(self.topics.event_topics(), session_id)}
        return sorted(names)

    def sessions(self) -> list[str]:
        return sorted({h[H_SESSION].decode() for h, _ in self._records(self.topics.event_topics())})

    def end_offset(self, session_id: str, stream: str) -> int:
        key = (session_id, stream)
        if key not in self._next:
            wanted = stream.encode()
            top = -1
            for headers, _ in self._records(self._topic_of_stream(session_id, stream), session_id):
                if headers[H_STREAM] == wanted:
                    top = max(top, int(headers[H_OFFSET]))
            self._next[key] = top + 1
        return self._next[key]

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush()

    def __enter__(self) -> KafkaEventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def account_of_payload(payload: bytes, default: str) -> str:
    try:
        return str(json.loads(payload).get("account") or default)
    except ValueError:
        return default


__all__ = ["KafkaEventLog", "route"]
