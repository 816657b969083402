"""The trading loop of a live or paper session: market data and the live venues' reports arrive on one
queue, in arrival order, and are fed to the session (`application.live_run.LiveRun`) in batches; each batch
is durable before the loop awaits again, which is when the venues' requests for it start.

`SessionMarketFeed` plays the market data of a recorded session as a live feed (re-stamped with the local
receive clock, paced at the recorded pace times `speed`): paper trading over a recorded day, and the feed
the tests drive the loop with; a resumed session picks it up where it stopped. A live recorder's feed fits
the same shape: (stream, event) pairs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

from adapters.exchanges.live_venue import LiveVenue
from application.live_run import LiveRun
from application.ports import EventLog
from application.session_run import market_data_streams, session_inputs
from domain.events import EventBase, decode, input_event_id

Inbox = asyncio.Queue[tuple[str, EventBase]]


class SessionMarketFeed:
    def __init__(self, log: EventLog, source_session: str, target_session: str, clock: Callable[[], int],
                 speed: float = 1.0) -> None:  # fmt: skip
        self.streams = market_data_streams(log, source_session)
        if not self.streams:
            raise ValueError(f"session {source_session!r} has no market data streams (md.*)")
        self._log, self._source, self._target = log, source_session, target_session
        self._clock, self._speed = clock, speed

    async def __aiter__(self) -> AsyncIterator[tuple[str, EventBase]]:
        loop = asyncio.get_running_loop()
        started, first_ns = loop.time(), None
        # A resumed session already holds the first records of each stream: the feed goes on after them.
        sequences = {s: self._log.end_offset(self._target, s) for s in self.streams}
        skip = dict(sequences)
        for count, (stream, stored) in enumerate(session_inputs(self._log, self._source, self.streams)):
            if skip[stream]:
                skip[stream] -= 1
                continue
            recorded_ns = stored.record.event_time_ns
            first_ns = recorded_ns if first_ns is None else first_ns
            delay = started + (recorded_ns - first_ns) / 1e9 / self._speed - loop.time() if self._speed else 0
            if delay > 0:
                await asyncio.sleep(delay)
            elif count % 200 == 0:
                await asyncio.sleep(0)  # let the venues' requests and the consumer run
            event = decode(stored.record.payload)
            sequence = sequences[stream]
            sequences[stream] = sequence + 1
            now = self._clock()
            envelope = event.envelope.model_copy(update={
                "event_id": input_event_id(self._target, stream, sequence), "session_id": self._target,
                "sequence": sequence, "event_time_ns": now, "ingest_time_ns": now})  # fmt: skip
            yield stream, event.model_copy(update={"envelope": envelope})


async def trade(run: LiveRun, feed: AsyncIterator[tuple[str, EventBase]], inbox: Inbox,
                venues: Sequence[LiveVenue], poll_interval_s: float, stop: asyncio.Event) -> int:  # fmt: skip
    """Run until `stop` is set or the feed ends (then the venues settle and their last reports are fed);
    returns the number of inputs fed."""

    async def pump() -> None:
        async for item in feed:
            await inbox.put(item)
            if stop.is_set():
                return
        stop.set()

    async def poll() -> None:
        while not stop.is_set():
            await asyncio.sleep(poll_interval_s)
            for venue in venues:
                await venue.poll()

    workers = [asyncio.ensure_future(pump()), asyncio.ensure_future(poll())]
    workers += [asyncio.ensure_future(venue.watch()) for venue in venues if venue.streams_orders]
    fed = 0
    try:
        while not (stop.is_set() and inbox.empty()):
            try:
                first = await asyncio.wait_for(inbox.get(), timeout=poll_interval_s)
            except TimeoutError:
                continue
            batch = [first]
            while not inbox.empty():
                batch.append(inbox.get_nowait())
            run.feed(batch)
            fed += len(batch)
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    for venue in venues:  # what was in flight when the feed ended
        await venue.settle()
    tail = []
    while not inbox.empty():
        tail.append(inbox.get_nowait())
    if tail:
        run.feed(tail)
    return fed + len(tail)
