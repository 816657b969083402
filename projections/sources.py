"""Event logs to project from, beyond the embedded SQLite log.

`SnapshotLog` wraps a log whose reads are expensive per call, such as `streams.kafka_event_log.KafkaEventLog`
(each `read` scans the topics from the beginning): the projectors read a stream batch by batch, each batch a
new `read(session, stream, from_offset)`, which would scan the topics once per batch. The wrapper reads each
(session, stream) once, up to the end it had at that moment, and serves the batches from memory; `refresh()`
forgets the snapshot so a later pass (live mode) sees new records. Offsets and records are the wrapped log's,
so the projectors' exactly-once tracking (per session and stream, in the SQL tracking table) is unchanged.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from application.ports import EventLog, LogRecord, StoredRecord


class SnapshotLog:
    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._records: dict[tuple[str, str], tuple[list[int], list[StoredRecord]]] = {}
        self._streams: dict[str, list[str]] = {}
        self._sessions: list[str] | None = None

    def refresh(self) -> None:
        self._records.clear()
        self._streams.clear()
        self._sessions = None

    def _snapshot(self, session_id: str, stream: str) -> tuple[list[int], list[StoredRecord]]:
        key = (session_id, stream)
        if key not in self._records:
            records = list(self.log.read(session_id, stream, 0))
            self._records[key] = ([r.offset for r in records], records)
        return self._records[key]

    def read(self, session_id: str, stream: str, from_offset: int = 0) -> Iterator[StoredRecord]:
        offsets, records = self._snapshot(session_id, stream)
        return iter(records[bisect_left(offsets, from_offset) :])

    def streams(self, session_id: str) -> list[str]:
        if session_id not in self._streams:
            self._streams[session_id] = self.log.streams(session_id)
        return self._streams[session_id]

    def sessions(self) -> list[str]:
        if self._sessions is None:
            self._sessions = self.log.sessions()
        return self._sessions

    def end_offset(self, session_id: str, stream: str) -> int:
        offsets, _ = self._snapshot(session_id, stream)
        return offsets[-1] + 1 if offsets else 0

    def append(self, session_id: str, records: Sequence[LogRecord]) -> list[int]:
        raise TypeError("SnapshotLog is read-only: append to the wrapped log")
