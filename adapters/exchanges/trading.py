"""The trading loop of a live or paper session: market data and the live venues' reports arrive on one
queue, in arrival order, and are fed to the session (`application.live_run.LiveRun`) in batches; each batch
is durable before the loop awaits again, which is when the venues' requests for it start. Operator commands
stored in the session meanwhile (`cse command ...`) run first in the next batch.

Feeds are async iterators of (stream, event), re-stamped into the trading session (`Restamper`):
* `LiveMarketFeed`: the exchanges' live market data, from the recorder (`adapters/exchanges/recorder.py`) run
  in-process: it records into its own recording session, as `cse record` does, and hands every event it
  records to the loop, with its receive time;
* `SessionMarketFeed`: the market data of a recorded session, played at the recorded pace times `speed` and
  stamped with the local clock as delivered (paper trading over a recorded day; the tests' feed); a resumed
  session picks it up where it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from adapters.exchanges.live_venue import LiveVenue
from adapters.exchanges.record_log import Builder, RecordLog
from adapters.exchanges.recorder import ExchangeRecorder, record_exchanges
from application.live_run import LiveRun
from application.ports import EventLog
from application.session_run import MARKET_DATA_PREFIX, market_data_streams, session_inputs
from domain.events import EventBase, decode, input_event_id

Inbox = asyncio.Queue[tuple[str, EventBase]]
_END = ("", None)


class Restamper:
    """Market data into the trading session: the stream's next sequence there, the id derived from it, the
    trading session's id, and the local time it arrived (`time_ns`)."""

    def __init__(self, log: EventLog, target_session: str) -> None:
        self._log, self._target = log, target_session
        self._next: dict[str, int] = {}

    def __call__(self, stream: str, event: EventBase, time_ns: int) -> EventBase:
        sequence = self._next.get(stream)
        if sequence is None:  # a resumed session goes on after what it holds
            sequence = self._log.end_offset(self._target, stream)
        self._next[stream] = sequence + 1
        envelope = event.envelope.model_copy(update={
            "event_id": input_event_id(self._target, stream, sequence), "session_id": self._target,
            "sequence": sequence, "event_time_ns": time_ns, "ingest_time_ns": time_ns})  # fmt: skip
        return event.model_copy(update={"envelope": envelope})


class _TeeRecordLog(RecordLog):
    """The recording session, as `cse record` writes it, and every market event it records handed on."""

    def __init__(self, log: EventLog, session_id: str, hand_on: Callable[[str, EventBase], None],
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(log, session_id, **kwargs)
        self._hand_on = hand_on

    def _add_record(self, stream: str, key: str, build: Builder, time_ns: int) -> EventBase | None:
        event = super()._add_record(stream, key, build, time_ns)
        if event is not None and stream.startswith(MARKET_DATA_PREFIX):
            self._hand_on(stream, event)
        return event


class LiveMarketFeed:
    """The exchanges' live market data for a trading session (`recorders`: rec's `ExchangeRecorder`s made
    with `out=feed.out`). Ends when `stop` is set (then what the recorders received is recorded first)."""

    def __init__(self, log: EventLog, recording_session: str, target_session: str, *, code_version: str,
                 config: Mapping[str, object]) -> None:  # fmt: skip
        self._queue: asyncio.Queue[tuple[str, EventBase | None]] = asyncio.Queue()
        self._restamp = Restamper(log, target_session)
        self.out = _TeeRecordLog(log, recording_session, lambda stream, event: self._queue.put_nowait((stream, event)),
                                 code_version=code_version, config=config)  # fmt: skip

    async def run(self, recorders: Sequence[ExchangeRecorder], stop: asyncio.Event) -> None:
        """Record until `stop`; then the feed ends."""
        try:
            await record_exchanges(recorders, self.out, stop)
        finally:
            self._queue.put_nowait(_END)

    async def __aiter__(self) -> AsyncIterator[tuple[str, EventBase]]:
        while True:
            stream, event = await self._queue.get()
            if event is None:
                return
            yield stream, self._restamp(stream, event, event.envelope.event_time_ns)


class SessionMarketFeed:
    def __init__(self, log: EventLog, source_session: str, target_session: str, clock: Callable[[], int],
                 speed: float = 1.0, stop: asyncio.Event | None = None) -> None:  # fmt: skip
        """`stop`: when set, the feed ends (SIGINT, --duration)."""
        self.streams = market_data_streams(log, source_session)
        if not self.streams:
            raise ValueError(f"session {source_session!r} has no market data streams (md.*)")
        self._log, self._source, self._target = log, source_session, target_session
        self._clock, self._speed, self._stop = clock, speed, stop

    async def __aiter__(self) -> AsyncIterator[tuple[str, EventBase]]:
        loop = asyncio.get_running_loop()
        started, first_ns = loop.time(), None
        # A resumed session already holds the first records of each stream: the feed goes on after them.
        restamp = Restamper(self._log, self._target)
        skip = {s: self._log.end_offset(self._target, s) for s in self.streams}
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
            if self._stop is not None and self._stop.is_set():
                return
            yield stream, restamp(stream, decode(stored.record.payload), self._clock())


async def trade(run: LiveRun, feed: AsyncIterator[tuple[str, EventBase]], inbox: Inbox,
                venues: Sequence[LiveVenue], poll_interval_s: float) -> int:  # fmt: skip
    """Run until the feed ends (a feed ends when its stop is set, after what it received), every input fed;
    then the venues settle and their last reports are fed. Returns the number of inputs fed."""
    done = asyncio.Event()

    async def pump() -> None:
        try:
            async for item in feed:
                await inbox.put(item)
        finally:
            done.set()

    async def poll() -> None:
        while not done.is_set():
            await asyncio.sleep(poll_interval_s)
            for venue in venues:
                await venue.poll()

    workers = [asyncio.ensure_future(pump()), asyncio.ensure_future(poll())]
    workers += [asyncio.ensure_future(venue.watch()) for venue in venues if venue.streams_orders]
    fed = 0
    try:
        while not (done.is_set() and inbox.empty()):
            try:
                batch = [await asyncio.wait_for(inbox.get(), timeout=poll_interval_s)]
            except TimeoutError:
                batch = []
            while not inbox.empty():
                batch.append(inbox.get_nowait())
            batch = run.operator_commands() + batch  # a kill switch goes first
            if batch:
                run.feed(batch)
                fed += len(batch)
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    for venue in venues:  # what was in flight when the feed ended
        await venue.settle()
    tail = run.operator_commands()
    while not inbox.empty():
        tail.append(inbox.get_nowait())
    if tail:
        run.feed(tail)
    return fed + len(tail)
