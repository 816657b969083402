"""`application.live_feed.SessionFeed` on the embedded SQLite log: follow a session by polling the end
offsets of its streams (the log has no notification), or replay it paced by event time."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Iterator
from itertools import islice
from pathlib import Path

from adapters.sqlite_event_log import SqliteEventLog
from application.live_feed import FeedItem, paced

_BATCH = 500  # records read per step before yielding to the event loop


class LogFeed:
    """Each iterator opens its own read connection (SQLite connections are per thread; WAL lets readers run
    beside the writer)."""

    def __init__(self, path: str | Path, poll_seconds: float = 0.02, catalog: Path | None = None) -> None:
        self.path = path
        self.poll_seconds = poll_seconds
        self.catalog = catalog

    async def follow(self, session_id: str, *, from_start: bool = False) -> AsyncIterator[FeedItem]:
        with SqliteEventLog(self.path, catalog=self.catalog) as log:
            positions = (
                {} if from_start else {s: log.end_offset(session_id, s) for s in log.streams(session_id)}
            )
            while True:
                moved = False
                for stream in log.streams(session_id):
                    start = positions.get(stream, 0)
                    for stored in islice(log.read(session_id, stream, start), _BATCH):
                        positions[stream] = stored.offset + 1
                        moved = True
                        yield FeedItem(session_id, stored.offset, stored.record)
                await asyncio.sleep(0 if moved else self.poll_seconds)

    async def replay(self, session_id: str, speed: float) -> AsyncIterator[FeedItem]:
        with SqliteEventLog(self.path, catalog=self.catalog) as log:
            merged = heapq.merge(*(_keyed(log, session_id, s) for s in log.streams(session_id)))
            async for item in paced(((t, item) for t, _, _, item in merged), speed):
                yield item


def _keyed(log: SqliteEventLog, session_id: str, stream: str) -> Iterator[tuple[int, str, int, FeedItem]]:
    """A stream's records keyed for the merge: event time, then stream name and offset (a total order)."""
    for stored in log.read(session_id, stream):
        yield (
            stored.record.event_time_ns,
            stream,
            stored.offset,
            FeedItem(session_id, stored.offset, stored.record),
        )
