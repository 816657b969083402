"""An open subscription must not keep memory per delivered event. strawberry 0.341 + graphql-core 3.3.2 kept
about 1.65 KiB per event in an execution context shared across the events of a subscription; the hub runs
each event in a fresh execution. This test catches that kind of growth on a few thousand events."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator

import pytest
from graphql import parse

from adapters.api.hub import Client, Hub, Selection, Subscriber
from adapters.api.schema import schema
from application.live_feed import FeedItem
from application.ports import LogRecord

pytestmark = pytest.mark.unit

QUERY = parse("subscription($s: String!) { events(session: $s) { type offset eventTimeNs eventId data } }")
PAYLOAD = (b'{"type":"market.quote","schema_version":1,"envelope":{"event_id":"6b1f3c1e-7d0a-5c5e-9a43-1f5c0de5eed5",'
           b'"session_id":"s","sequence":1,"event_time_ns":1,"ingest_time_ns":1,"source":"t"},"venue":"v",'
           b'"instrument":"BTCUSDT","bid_price":"1","ask_price":"2"}')  # fmt: skip


class CountingFeed:
    def __init__(self, count: int, marks: dict[int, int]) -> None:
        self.count, self.marks = count, marks

    async def follow(self, session_id: str, *, from_start: bool = False) -> AsyncIterator[FeedItem]:
        for i in range(self.count):
            if i in self.marks:
                await asyncio.sleep(0.01)  # let the client drain before measuring
                gc.collect()
                self.marks[i] = tracemalloc.get_traced_memory()[0]
            yield FeedItem(session_id, i, LogRecord("derived", "k", "market.quote", i, PAYLOAD))
            if i % 50 == 0:
                await asyncio.sleep(0)

    def replay(self, session_id: str, speed: float) -> AsyncIterator[FeedItem]:
        raise NotImplementedError


class LeakyHub(Hub):
    """The trap, reproduced: state kept per delivered event (as a shared executor cache does)."""

    kept: list[str] = []

    def render(self, selection: Selection, root: object) -> str:
        payload = super().render(selection, root)
        self.kept.append(payload)
        return payload


def _kept_per_event(hub_class: type[Hub]) -> float:
    marks = {1_000: 0, 5_000: 0}
    delivered: list[int] = []

    async def main() -> None:
        async def send(message: str) -> None:
            delivered.append(len(message))
            if len(delivered) > 100:
                delivered.clear()

        async def close(code: int, reason: str) -> None:
            raise AssertionError(f"client dropped: {reason}")

        hub = hub_class(schema._schema, CountingFeed(5_001, marks))
        client = Client(send, close)
        done = asyncio.Event()
        hub.subscribe(Subscriber(client, '{"id":"1","type":"next","payload":', done.set), "s", QUERY, {"s": "s"},
                      (), None, None, False)  # fmt: skip
        await asyncio.wait_for(done.wait(), 120)
        client.stop()

    tracemalloc.start()
    try:
        asyncio.run(main())
    finally:
        tracemalloc.stop()
    return (marks[5_000] - marks[1_000]) / 4_000


LIMIT = 64
"""Bytes an open subscription may keep per delivered event (strawberry's own executor kept ~1 KiB here)."""


def test_open_subscription_memory_is_flat_per_delivered_event() -> None:
    per_event = _kept_per_event(Hub)
    assert per_event < LIMIT, f"{per_event:.0f} bytes kept per delivered event"


def test_the_measurement_catches_per_event_growth() -> None:
    assert _kept_per_event(LeakyHub) > LIMIT
