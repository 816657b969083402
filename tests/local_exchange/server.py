"""The local exchange's process side: one aiohttp application per venue, each on its own free port of
127.0.0.1, all run by one event loop in a background thread (so sync tests, async tests and subprocesses under
test can all talk to it).

Extension hook: an `Installer` is called once per venue with its `VenueServer` before the server starts and
may add routes to `venue.app.router` (and keep state on `venue.state`, a dict). Every venue first gets its
market-data routes (`tests.local_exchange.venues`), then the installers run, then a catch-all answers any
other path with 404 naming it (so a client calling a path nobody serves fails clearly). The HTTP fault
middleware (`Faults`) applies to every route, the installers' included.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.local_exchange.faults import Faults

Installer = Callable[["VenueServer"], None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class VenueServer:
    """One venue: `name` is the ccxt exchange id; `app` is its aiohttp application (add routes before start)."""

    name: str
    app: web.Application
    faults: Faults = field(default_factory=Faults)
    state: dict[str, Any] = field(default_factory=dict)
    """Free-form state for installers (e.g. the order book of `orders.py`)."""
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    """Every request as (method, path, query string), websocket upgrades included."""
    feed: Any = None
    """The venue's market-data feed (`venues.*`), set by the venue's own installer."""
    port: int = 0
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the server's loop and return its result (for reading feed state from a test)."""
        assert self.loop is not None, "the exchange is not started"

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


VENUE_KEY = web.AppKey("venue", VenueServer)


@web.middleware
async def _faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    venue = request.app[VENUE_KEY]
    venue.requests.append((request.method, request.path, request.query_string))
    fault = venue.faults.take_http(request.path)
    if fault is not None:
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.status is not None:
            # 429 as the exchanges send it (a JSON error); 5xx as a gateway does (plain text)
            headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else {}
            if fault.status == 429:
                return web.json_response({"code": -1003, "msg": "Too many requests (injected fault)"},
                                         status=429, headers=headers)  # fmt: skip
            return web.Response(text=f"{fault.status} injected fault", status=fault.status, headers=headers)
    return await handler(request)


async def _not_served(request: web.Request) -> web.StreamResponse:
    return web.json_response(
        {"code": -1, "msg": f"local exchange: {request.method} {request.path} is not served"}, status=404
    )


class LocalExchange:
    """`LocalExchange(venues=["binance", "bybit"], installers=[...], captures={...}).start()`; `stop()` (or use
    it as a context manager). `api_base(venue)` is the URL to give `--api-base VENUE=URL`."""

    def __init__(
        self,
        venues: Sequence[str] = ("binance", "binanceusdm", "binancecoinm", "bybit", "kraken", "coinbase"),
        installers: Sequence[Installer] = (),
        captures: Mapping[str, Path] | None = None,
        message_limit: int | None = None,
    ) -> None:
        from tests.local_exchange.venues import market_data_installer

        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self.venues: dict[str, VenueServer] = {}
        market = market_data_installer(captures or {}, message_limit)
        for name in venues:
            app = web.Application(middlewares=[_faults_middleware])
            venue = VenueServer(name=name, app=app)
            app[VENUE_KEY] = venue
            market(venue)
            for install in installers:
                install(venue)
            app.router.add_route("*", "/{tail:.*}", _not_served)
            self.venues[name] = venue

    def venue(self, name: str) -> VenueServer:
        return self.venues[name]

    def api_base(self, name: str) -> str:
        return self.venues[name].base_url

    def api_bases(self) -> dict[str, str]:
        return {name: venue.base_url for name, venue in self.venues.items()}

    def start(self) -> LocalExchange:
        started = threading.Event()

        async def serve() -> None:
            for venue in self.venues.values():
                runner = web.AppRunner(venue.app, access_log=None, shutdown_timeout=0.5)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                server = site._server
                assert server is not None
                venue.port = server.sockets[0].getsockname()[1]
                venue.loop = self._loop
                self._runners.append(runner)

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="local-exchange", daemon=True)
        self._thread.start()
        if not started.wait(15):
            raise RuntimeError("the local exchange did not start within 15 s")
        return self

    def stop(self) -> None:
        if self._thread is None:
            return

        async def shutdown() -> None:
            for runner in self._runners:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._thread = None

    def __enter__(self) -> LocalExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
