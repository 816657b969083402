"""The fan-out hub: a client that falls behind is told and dropped while the others get every event, and one
document shared by many clients is executed once per event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from graphql import parse

from adapters.api.hub import Client, Hub, Subscriber
from adapters.api.schema import schema
from application.live_feed import FeedItem
from application.ports import LogRecord

pytestmark = pytest.mark.unit

QUERY = parse("subscription($s: String!) { events(session: $s) { offset type } }")


class ListFeed:
    def __init__(self, count: int) -> None:
        self.count = count

    async def follow(self, session_id: str, *, from_start: bool = False) -> AsyncIterator[FeedItem]:
        for i in range(self.count):
            yield FeedItem(session_id, i, LogRecord("derived", "k", "portfolio.equity_sampled", i, b"{}"))
            if i % 10 == 0:
                await asyncio.sleep(0)

    def replay(self, session_id: str, speed: float) -> AsyncIterator[FeedItem]:
        raise NotImplementedError


def test_a_slow_client_is_told_and_dropped_and_the_others_get_everything() -> None:
    async def main() -> tuple[list[str], list[tuple[int, str]], list[str], int]:
        fast_got: list[str] = []
        slow_sent: list[str] = []
        closed: list[tuple[int, str]] = []
        stuck = asyncio.Event()

        async def fast_send(message: str) -> None:
            fast_got.append(message)

        async def slow_send(message: str) -> None:
            slow_sent.append(message)
            await stuck.wait()  # a client whose socket never drains

        async def fast_close(code: int, reason: str) -> None:
            raise AssertionError("the fast client must not be dropped")

        async def slow_close(code: int, reason: str) -> None:
            closed.append((code, reason))

        hub = Hub(schema._schema, ListFeed(300))
        fast, slow = Client(fast_send, fast_close), Client(slow_send, slow_close, limit=20)
        done = asyncio.Event()
        for client, on_end in ((fast, done.set), (slow, lambda: None)):
            hub.subscribe(Subscriber(client, '{"id":"1","type":"next","payload":', on_end), "s", QUERY, {"s": "s"},
                          (), None, None, False)  # fmt: skip
        await asyncio.wait_for(done.wait(), 30)
        await asyncio.sleep(1.5)  # the drop notice gives up on a stuck socket after 1 s
        fast.stop()
        return fast_got, closed, slow_sent, hub.executions

    fast_got, closed, slow_sent, executions = asyncio.run(main())
    assert [json.loads(m)["payload"]["data"]["events"]["offset"] for m in fast_got] == [
        str(i) for i in range(300)
    ]
    assert closed == [(4429, "client too slow")]
    assert executions == 300  # once per event, not once per client
    assert len(slow_sent) <= 2  # it never got further than its first message


def test_a_send_that_waits_keeps_the_order_and_sends_the_rest_eagerly_again() -> None:
    async def main() -> tuple[list[str], int]:
        got: list[str] = []
        gate = asyncio.Event()
        suspended = 0

        async def send(message: str) -> None:
            nonlocal suspended
            if message == "2" and not gate.is_set():  # the socket's buffer is full for a moment
                suspended += 1
                await gate.wait()
            got.append(message)

        async def close(code: int, reason: str) -> None:
            raise AssertionError("not too slow")

        client = Client(send, close, limit=10)
        for i in range(5):
            client.offer(str(i))
        assert got == ["0", "1"] and client.sender is not None  # 0 and 1 went at once; 2 waits, 3 and 4 queue
        gate.set()
        await asyncio.sleep(0.01)
        assert client.sender is None  # drained: the next message goes eagerly again
        client.offer("5")
        return got, suspended

    got, suspended = asyncio.run(main())
    assert got == [str(i) for i in range(6)] and suspended == 1
