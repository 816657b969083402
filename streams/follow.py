"""The event log's read side, fed live by a consumer tailing the event topics: what `cse project --follow`
projects from when the log is Kafka.

`KafkaEventLog.read` scans the topics from the beginning on every call; a projector that follows the log
must not. `TailLog` assigns every partition of the event topics (md, derived, session) from the beginning
once, and each `poll()` indexes the new messages by (session, stream, offset) from their headers (see
`streams.serialization`). Reads serve the records in memory, so the projectors' exactly-once tracking (per
session and stream, in SQL) works unchanged.

- Duplicates (a worker re-publishing after a restart) keep their first copy, as `KafkaEventLog.read` does.
- A stream is served only up to its first gap: `derived` spans topics and partitions, so offset 10 may
  arrive before offset 9; the projector must never see 10 first (it would move its tracking past 9).
- Memory: `trim(session, stream, offset)` drops what every projector has committed. A restart re-reads
  the topics from the beginning and the projectors skip what they already applied (the topics keep
  everything: retention -1, `streams.topics`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from application.ports import LogRecord, StoredRecord
from streams.kafka_io import make_consumer, partitions_of
from streams.serialization import (
    H_LOG_KEY,
    H_OFFSET,
    H_SESSION,
    H_STREAM,
    H_TIME,
    H_TRACE,
    H_TYPE,
    header_map,
)
from streams.topics import Topics


@dataclass
class _Stream:
    base: int = 0  # offset of ready[0]; everything below it was trimmed
    ready: list[StoredRecord] = field(default_factory=list)  # contiguous from base
    pending: dict[int, StoredRecord] = field(default_factory=dict)  # beyond the first gap
    traces: dict[int, bytes] = field(default_factory=dict)  # offset -> traceparent, until trimmed

    @property
    def end(self) -> int:
        return self.base + len(self.ready)

    def add(self, record: StoredRecord) -> bool:
        offset = record.offset
        if offset < self.end or offset in self.pending:
            return False
        self.pending[offset] = record
        while self.end in self.pending:
            self.ready.append(self.pending.pop(self.end))
        return True

    def trim(self, through: int) -> None:
        drop = min(len(self.ready), through + 1 - self.base)
        if drop > 0:
            for stored in self.ready[:drop]:
                self.traces.pop(stored.offset, None)
            del self.ready[:drop]
            self.base += drop


class TailLog:
    """`application.ports.EventLog` (read side) over a consumer that tails the event topics."""

    def __init__(self, bootstrap: str, topics: Topics, consumer: Consumer | None = None) -> None:
        self.topics = topics
        self.group = f"{topics.prefix}-projector-tail"
        self._consumer = consumer or make_consumer(bootstrap, group=self.group)
        self._sessions: dict[str, dict[str, _Stream]] = {}
        self._positions: dict[tuple[str, int], int] = {}
        assignment = [TopicPartition(topic, p, OFFSET_BEGINNING)
                      for topic in topics.event_topics() for p in partitions_of(self._consumer, topic)]  # fmt: skip
        self._consumer.assign(assignment)
        self.messages = 0

    def poll(self, max_messages: int = 5_000, timeout: float = 1.0) -> int:
        """Index what arrived (waits up to `timeout` for the first message); returns how many new records."""
        new = 0
        for msg in self._consumer.consume(max_messages, timeout):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(err)
            self.messages += 1
            self._positions[(msg.topic(), msg.partition())] = msg.offset() + 1
            headers = header_map(msg.headers())
            if H_STREAM not in headers or H_SESSION not in headers or H_OFFSET not in headers:
                continue  # control records (end of session) and foreign messages carry no log position
            session, stream = headers[H_SESSION].decode(), headers[H_STREAM].decode()
            offset = int(headers[H_OFFSET])
            record = LogRecord(stream, headers.get(H_LOG_KEY, b"").decode(), headers[H_TYPE].decode(),
                               int(headers[H_TIME]), msg.value())  # fmt: skip
            state = self._sessions.setdefault(session, {}).setdefault(stream, _Stream())
            if state.add(StoredRecord(offset, record)):
                new += 1
                if H_TRACE in headers:
                    state.traces[offset] = headers[H_TRACE]
        return new

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages not yet polled, per (topic, partition)."""
        out: dict[tuple[str, int], int] = {}
        for tp in self._consumer.assignment():
            _, high = self._consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            out[(tp.topic, tp.partition)] = max(0, high - self._positions.get((tp.topic, tp.partition), 0))
        return out

    def trim(self, session_id: str, stream: str, through: int) -> None:
        """Forget the stream's records up to offset `through` (every projector has committed them)."""
        state = self._sessions.get(session_id, {}).get(stream)
        if state is not None:
            state.trim(through)

    def traceparent(self, session_id: str, stream: str, offset: int) -> bytes | None:
        state = self._sessions.get(session_id, {}).get(stream)
        return None if state is None else state.traces.get(offset)

    def read(self, session_id: str, stream: str, from_offset: int = 0) -> Iterator[StoredRecord]:
        state = self._sessions.get(session_id, {}).get(stream)
        if state is None:
            return iter(())
        if from_offset < state.base:
            raise ValueError(
                f"{session_id}/{stream}: offsets below {state.base} were trimmed, asked {from_offset}"
            )
        return iter(state.ready[from_offset - state.base :])

    def streams(self, session_id: str) -> list[str]:
        return sorted(self._sessions.get(session_id, {}))

    def sessions(self) -> list[str]:
        return sorted(self._sessions)

    def end_offset(self, session_id: str, stream: str) -> int:
        state = self._sessions.get(session_id, {}).get(stream)
        return 0 if state is None else state.end

    def append(self, session_id: str, records: Sequence[LogRecord]) -> list[int]:
        raise TypeError("TailLog is read-only: records are appended to the Kafka topics")

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> TailLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
