"""Market data played to websocket subscribers, in the recorded order, through a venue's `Feed`.

One `Playback` per venue walks its source messages (a Binance capture, `capture.py`) once. The market moves
only while at least one websocket is connected (a test's client that reconnects finds the market where it
left it, minus what was sent meanwhile to nobody), as fast as the subscribers read. A feed turns each source
message into zero or more (topic, text) messages of its venue's format and keeps the venue's true book; a
connection receives the messages of the topics it subscribed to.

Faults (`Faults`): `drop_ws_after` closes every connection after N more sent messages; `skip_depth_after`
leaves one depth message out (the feed's truth still moves: the client has a gap); `swap_depth_after` sends
the next two depth messages in swapped order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from tests.local_exchange.faults import Faults


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    text: str
    depth: bool = False
    """A depth (book) update: the sequence faults apply to these."""


class Feed(Protocol):
    async def before(self, index: int, playback: Playback) -> None:
        """Wait, if the venue must, before source message `index` is played (Binance's REST snapshot)."""

    def play(self, index: int) -> list[Outgoing]:
        """The venue's messages for source message `index` (the feed's truth moves here)."""

    def source_length(self) -> int: ...


SEQUENCE_PLACEHOLDER = '"sequence_num":null'
"""In a message text: replaced by the connection's own message number (Coinbase's `sequence_num`)."""


@dataclass(eq=False)
class Subscriber:
    ws: web.WebSocketResponse
    topics: set[str] = field(default_factory=set)
    sequence: int | None = None
    """The connection's next message number, for venues that number the messages of a connection."""


class Playback:
    def __init__(self, feed: Feed, faults: Faults) -> None:
        self.feed = feed
        self.faults = faults
        self.cursor = 0
        self.subscribers: set[Subscriber] = set()
        self.finished_flag = False
        """Every source message was played (read from any thread)."""
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._held: Outgoing | None = None
        """A depth message held back by `swap_depth_after`, sent after the next one."""

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)
        self._connected.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def leave(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        if not self.subscribers:
            self._connected.clear()

    def subscribed(self, topic: str) -> bool:
        return any(topic in s.topics for s in self.subscribers)

    async def send_to(self, subscriber: Subscriber, messages: Sequence[Outgoing]) -> None:
        for message in messages:
            await self._deliver(subscriber, message)

    async def _run(self) -> None:
        total = self.feed.source_length()
        while self.cursor < total:
            await self._connected.wait()
            await self.feed.before(self.cursor, self)
            messages = self.feed.play(self.cursor)
            self.cursor += 1
            for message in messages:
                await self._publish(message)
            await asyncio.sleep(0)
        self.finished_flag = True

    async def _publish(self, message: Outgoing) -> None:
        if message.depth and self.subscribed(message.topic):
            faults = self.faults
            if faults.skip_depth_after is not None:
                if faults.skip_depth_after == 0:
                    faults.skip_depth_after = None
                    for subscriber in self.subscribers:  # lost in transit: its number was used
                        if subscriber.sequence is not None and message.topic in subscriber.topics:
                            subscriber.sequence += 1
                    return
                faults.skip_depth_after -= 1
            if faults.swap_depth_after is not None:
                if faults.swap_depth_after == 0:
                    faults.swap_depth_after = None
                    self._held = message
                    return
                faults.swap_depth_after -= 1
            await self._broadcast(message)
            if self._held is not None:
                held, self._held = self._held, None
                await self._broadcast(held)
            return
        await self._broadcast(message)

    async def _broadcast(self, message: Outgoing) -> None:
        for subscriber in list(self.subscribers):
            if message.topic in subscriber.topics:
                await self._deliver(subscriber, message)

    async def _deliver(self, subscriber: Subscriber, message: Outgoing) -> None:
        if subscriber.ws.closed:
            return
        text = message.text
        if subscriber.sequence is not None:
            text = text.replace(SEQUENCE_PLACEHOLDER, f'"sequence_num":{subscriber.sequence}', 1)
            subscriber.sequence += 1
        try:
            await subscriber.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            return
        faults = self.faults
        if faults.drop_ws_after is not None:
            if faults.drop_ws_after <= 0:
                faults.drop_ws_after = None
                faults.drops += 1
                for other in list(self.subscribers):
                    await other.ws.close()
            else:
                faults.drop_ws_after -= 1


def dumps(value: Any) -> str:
    """Compact JSON, as exchanges send it."""
    return json.dumps(value, separators=(",", ":"))
