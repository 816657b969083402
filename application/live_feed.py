"""Port of the live side: a session's records as they are written (or replayed), for subscriptions.

Records, not decoded events: a subscriber hub encodes what it sends from the canonical payload once per
record, whatever the number of clients, and a new event type flows through without a code change here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import NamedTuple, Protocol

from application.ports import LogRecord


class FeedItem(NamedTuple):
    session_id: str
    offset: int
    record: LogRecord


class SessionFeed(Protocol):
    def follow(self, session_id: str, *, from_start: bool = False) -> AsyncIterator[FeedItem]:
        """Every record appended to the session from now on (or from its start), until cancelled."""
        ...

    def replay(self, session_id: str, speed: float) -> AsyncIterator[FeedItem]:
        """The recorded session in event-time order across its streams, paced at `speed` x the recorded
        pace (0 = as fast as the reader goes); ends after its last record."""
        ...


async def paced(
    items: Iterable[tuple[int, FeedItem]], speed: float, yield_every: int = 500
) -> AsyncIterator[FeedItem]:
    """`items` (event time ns, item) in time order, released at `speed` x their recorded pace from the first
    one (0 = unpaced, handing the loop over every `yield_every` items so other clients keep being served)."""
    loop = asyncio.get_running_loop()
    first_ns: int | None = None
    started = loop.time()
    for count, (time_ns, item) in enumerate(items, 1):
        if speed > 0:
            first_ns = time_ns if first_ns is None else first_ns
            delay = started + (time_ns - first_ns) / 1e9 / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        elif count % yield_every == 0:
            await asyncio.sleep(0)
        yield item
