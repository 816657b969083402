"""Fan-out of live events to websocket clients: one feed per followed session, each record decoded once,
each distinct subscription (same document, variables and filter) executed once per record, and the bytes
of the resulting `next` message shared by every client of that subscription (only the id differs).

Why not strawberry's own subscription executor: it runs the selection once per subscriber per event, and
its execution context lives as long as the subscription, so graphql-core's per-context caches grow with
every delivered event (about 1.65 KiB per event measured on strawberry 0.341 + graphql-core 3.3.2). Here
each record gets a fresh execution (`graphql.execute`), so nothing accumulates across events.

A slow client never slows the feed: each client has a bounded queue; when it is full the client is told
("too slow") and dropped, and the others go on."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, GraphQLSchema, execute
from strawberry.execution.is_awaitable import optimized_is_awaitable

from adapters.api.executor import PlannedExecutor, response
from adapters.api.types import log_event
from adapters.api.wire import FrameWriter, Outgoing
from application.live_feed import FeedItem, SessionFeed

log = logging.getLogger("cse.api.hub")

QUEUE_LIMIT = 1_000
"""Messages a client may have queued unsent before it is dropped."""


class Client:
    """One websocket connection's outgoing side: a bounded queue of messages not yet handed to the socket.

    A message offered while nothing is queued is sent at once, inside the fan-out loop: the ASGI send of a
    websocket whose socket takes the bytes returns without ever suspending, so running it eagerly costs no
    task switch (1,000 clients of an event would otherwise wake 1,000 sender tasks). Only a send that does
    suspend (the socket's buffer is full: a slow reader) gets a task, which goes on with the queue. With a
    frame writer (`adapters.api.wire`) the eager send is the message's shared frame written straight to the
    transport, when the transport takes it; otherwise the ASGI send as above."""

    def __init__(self, send: Callable[[str], Awaitable[None]], close: Callable[[int, str], Awaitable[None]],
                 limit: int = QUEUE_LIMIT, write: FrameWriter | None = None) -> None:  # fmt: skip
        self.queue: deque[Outgoing] = deque()
        self.limit = limit
        self.send = send
        self.close = close
        self.write = write
        self.dropped = False
        self.sender: asyncio.Task[None] | None = None
        """Set while a send is suspended: it and the queue behind it are drained by this task."""

    def offer(self, message: str | Outgoing) -> None:
        if self.dropped:
            return
        if isinstance(message, str):
            message = Outgoing(message)
        if self.sender is None:
            if self.write is None or not self.write(message.frame):
                self._send_eagerly(message.text)
        elif len(self.queue) < self.limit:
            self.queue.append(message)
        else:
            self.dropped = True
            self.sender.cancel()
            asyncio.create_task(self._drop())

    def _send_eagerly(self, message: str) -> None:
        coro = self.send(message).__await__()
        try:
            waiting = coro.send(None)
        except StopIteration:
            return  # handed to the socket
        except Exception:  # the connection is gone: its receive loop ends the subscriptions
            self.dropped = True
            return
        self.sender = asyncio.create_task(self._drain(coro, waiting))

    async def _drain(self, coro: Generator[Any, None, None], waiting: Any) -> None:
        try:
            await _finish(coro, waiting)
            while self.queue:
                await self.send(self.queue.popleft().text)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.dropped = True
        finally:
            self.sender = None

    async def _drop(self) -> None:
        reason = f"client too slow: {self.limit} messages queued unsent; dropped"
        log.warning("websocket client dropped: %s", reason)
        self.queue.clear()
        try:
            await asyncio.wait_for(
                self.send(json.dumps({"type": "error", "payload": [{"message": reason}]})), 1.0
            )
        except Exception:  # the connection may already be gone; the close below is what matters
            pass
        await self.close(4429, "client too slow")

    def stop(self) -> None:
        if self.sender is not None:
            self.sender.cancel()


async def _finish(coro: Generator[Any, None, None], waiting: Any) -> None:
    """Run a started coroutine to its end as a task would: wait for what it waits on, resume it."""
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)  # a bare yield: it only gave way to the loop
            else:
                waiting._asyncio_future_blocking = False  # taken over, as a task takes over what it is given
                await waiting
        except asyncio.CancelledError:
            coro.close()
            raise
        except BaseException as exc:  # what it waited on failed: the coroutine decides what that means
            try:
                waiting = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting = coro.send(None)
        except StopIteration:
            return


@dataclass(eq=False)
class Subscriber:
    client: Client
    prefix: str
    """`{"id":<id>,"type":"next","payload":` of this subscription."""
    on_end: Callable[[], None]


@dataclass(eq=False)
class Selection:
    """Subscribers sharing one document, variables and filter: executed once per record."""

    document: DocumentNode
    variables: dict[str, Any]
    types: tuple[str, ...]
    instrument: str | None
    subscribers: list[Subscriber] = field(default_factory=list)
    plans: dict[Any, Any] = field(default_factory=dict)
    """The executor's completion plans of this document: built at the first event, reused by the next."""

    def accepts(self, item: FeedItem, instrument_of: Callable[[], str | None]) -> bool:
        kind = item.record.event_type
        if self.types and not any(
            kind == t or (t.endswith("*") and kind.startswith(t[:-1])) for t in self.types
        ):
            return False
        return self.instrument is None or instrument_of() == self.instrument


class Channel:
    """One feed (a followed session, or one client's replay) and the selections listening to it."""

    def __init__(self, hub: Hub, key: tuple[Any, ...], feed: AsyncIterator[FeedItem]) -> None:
        self.hub = hub
        self.key = key
        self.selections: dict[tuple[Any, ...], Selection] = {}
        self.task = asyncio.create_task(self._run(feed))

    async def _run(self, feed: AsyncIterator[FeedItem]) -> None:
        try:
            async for item in feed:
                self.deliver(item)
        except Exception:
            log.exception("feed of %s failed", self.key[1])
        for selection in list(self.selections.values()):
            for sub in list(selection.subscribers):
                sub.on_end()
        self.hub.channels.pop(self.key, None)

    def deliver(self, item: FeedItem) -> None:
        event = None
        instrument: list[str | None] = []

        def instrument_of() -> str | None:
            if not instrument:
                instrument.append(json.loads(item.record.payload).get("instrument"))
            return instrument[0]

        for selection in list(self.selections.values()):
            if not selection.subscribers or not selection.accepts(item, instrument_of):
                continue
            event = event or log_event(item.session_id, item.offset, item.record)
            payload = self.hub.render(selection, event)
            # by subscription id: the clients using the same id share one message and its frame
            messages: dict[str, Outgoing] = {}
            for sub in list(selection.subscribers):
                message = messages.get(sub.prefix)
                if message is None:
                    message = messages[sub.prefix] = Outgoing(sub.prefix + payload + "}")
                sub.client.offer(message)


class Hub:
    def __init__(self, schema: GraphQLSchema, feed: SessionFeed, context: Any = None) -> None:
        self.schema = schema
        self.feed = feed
        self.context = context
        self.channels: dict[tuple[Any, ...], Channel] = {}
        self.executions = 0

    def render(self, selection: Selection, root: Any) -> str:
        self.executions += 1
        result = execute(self.schema, selection.document, root_value=root, context_value=self.context,
                         variable_values=selection.variables, executor_class=PlannedExecutor,
                         is_awaitable=optimized_is_awaitable, plans=selection.plans)  # fmt: skip
        assert not isinstance(result, Awaitable), "live event fields resolve synchronously"
        return response(result.data, result.errors).decode()

    def subscribe(self, sub: Subscriber, session: str, document: DocumentNode, variables: dict[str, Any],
                  types: tuple[str, ...], instrument: str | None, replay_speed: float | None,
                  from_start: bool) -> Callable[[], None]:  # fmt: skip
        """Register; returns the function that unregisters."""
        if replay_speed is not None or from_start:
            # a replay (or a follow from the start) is this client's own timeline: a private channel
            key: tuple[Any, ...] = ("private", session, id(sub))
            feed = self.feed.replay(session, replay_speed) if replay_speed is not None else \
                self.feed.follow(session, from_start=True)  # fmt: skip
        else:
            key = ("follow", session)
            feed = None
        channel = self.channels.get(key)
        if channel is None:
            channel = self.channels[key] = Channel(self, key, feed or self.feed.follow(session))
        skey = (id(document), json.dumps(variables, sort_keys=True, default=str), types, instrument)
        selection = channel.selections.setdefault(skey, Selection(document, variables, types, instrument))
        selection.subscribers.append(sub)

        def unsubscribe() -> None:
            if sub in selection.subscribers:
                selection.subscribers.remove(sub)
            if not selection.subscribers:
                channel.selections.pop(skey, None)
            if not channel.selections and self.channels.get(key) is channel:
                del self.channels[key]
                channel.task.cancel()

        return unsubscribe
