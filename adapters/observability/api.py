"""API metrics: request duration by route and status class (an ASGI middleware, so every route is timed the
same way) and open subscriptions read off the subscription hub at scrape time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from adapters.observability.metrics import API_LATENCY, API_SUBSCRIPTIONS, status_class

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ROUTES = ("graphql", "health", "dashboard", "static")  # anything else is `other`: the label stays bounded


def route_of(path: str) -> str:
    first = path.strip("/").split("/", 1)[0]
    return f"/{first}" if first in ROUTES else "other"


class ApiMetricsMiddleware:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def send_and_note(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            API_LATENCY.labels(route_of(scope.get("path", "")), status_class(status)).observe(
                time.perf_counter() - started
            )


def watch_subscriptions(hub: Any) -> None:
    """`cse_api_subscriptions{subscription="live"|"replay"}`: subscribers of the shared live channels and of
    private replays, counted when Prometheus scrapes."""

    def count(kind: str) -> Callable[[], float]:
        def subscribers() -> float:
            channels = list(hub.channels.items())  # a copy: the event loop may change it meanwhile
            return float(sum(len(selection.subscribers) for key, channel in channels if key[0] == kind
                             for selection in list(channel.selections.values())))  # fmt: skip

        return subscribers

    API_SUBSCRIPTIONS.labels("live").set_function(count("follow"))
    API_SUBSCRIPTIONS.labels("replay").set_function(count("private"))
