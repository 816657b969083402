"""Test support for the API: a sample session projected into embedded read models, the real server (uvicorn)
on a free port in a thread, keys of each role, and a graphql-transport-ws client (websocket-client)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websocket

from adapters.api.app import create_app
from adapters.api.keys import KeyStore, Role
from adapters.api.services import ApiServices
from adapters.entrypoints.api_commands import build_services
from adapters.settings import Settings
from adapters.sqlite_event_log import SqliteEventLog
from application.ports import EventLog, LogRecord
from domain.events import Envelope, SessionStarted, encode, input_event_id
from projections.influx import TimeseriesProjector
from projections.projector import project
from projections.schema import make_engine, migrate
from projections.testing import build_sample_session
from projections.timeseries_sqlite import SqlPointSink

SESSION = "api-sample"
LIVE = "api-live"
"""A session still open (started, not ended): where the mutation tests send commands, since the sample
session is a finished run and refuses them."""


def project_embedded(settings: Settings, session: str) -> None:
    async def run() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{settings.home / 'read_models.sqlite'}")
        await migrate(engine)
        with SqliteEventLog(settings.event_log_path) as log:
            await project(engine, log, session)
            await TimeseriesProjector(engine, log, SqlPointSink(engine)).project_session(session)
        await engine.dispose()

    asyncio.run(run())


def open_live_session(log: EventLog, session: str = LIVE, time_ns: int = 1_700_000_000_000_000_000) -> None:
    """Start `session` as a live one: its only record is its start marker."""
    envelope = Envelope(event_id=input_event_id(session, "session", 0), session_id=session, sequence=0,
                        event_time_ns=time_ns, ingest_time_ns=time_ns, source="test")  # fmt: skip
    started = SessionStarted(
        envelope=envelope, mode="live", config_hash="", model_hash="", code_version="test"
    )
    log.append(session, [LogRecord("session", session, started.type, time_ns, encode(started))])


def sample_home(home: Path, orders: int = 20) -> Settings:
    settings = Settings(home=home)
    home.mkdir(parents=True, exist_ok=True)
    with SqliteEventLog(settings.event_log_path) as log:
        build_sample_session(log, SESSION, orders=orders)
        open_live_session(log)
    project_embedded(settings, SESSION)
    return settings


@dataclass
class Server:
    url: str
    keys: dict[str, str]
    settings: Settings
    app: Any

    def post(self, query: str, variables: dict[str, Any] | None = None, role: str | None = "viewer",
             key: str | None = None) -> dict[str, Any]:  # fmt: skip
        headers = {}
        if key or role:
            headers["authorization"] = f"Bearer {key or self.keys[role or '']}"
        r = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                       headers=headers, timeout=30)  # fmt: skip
        body: dict[str, Any] = r.json()
        return body


@contextmanager
def running_server(
    settings: Settings, services: ApiServices | None = None, **app_options: Any
) -> Iterator[Server]:
    store = KeyStore(settings.api_keys_path)
    keys = {role.name: store.create(role, f"test-{role.name}") for role in Role}
    services = services or build_services(settings, "embedded", "embedded")
    app = create_app(services, **app_options)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, ws="websockets-sansio", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Server(f"http://127.0.0.1:{port}", keys, settings, app)
    finally:
        server.should_exit = True
        thread.join(10)


class WsClient:
    """A graphql-transport-ws client over a real TCP websocket."""

    def __init__(self, url: str, key: str | None) -> None:
        self.ws = websocket.create_connection(url.replace("http", "ws") + "/graphql",
                                              subprotocols=["graphql-transport-ws"], timeout=30)  # fmt: skip
        self.ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": key} if key else {}}))
        assert self.recv()["type"] == "connection_ack"

    def recv(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.ws.recv())
        return message

    def subscribe(self, op_id: str, query: str, variables: dict[str, Any]) -> None:
        self.ws.send(json.dumps({"id": op_id, "type": "subscribe",
                                 "payload": {"query": query, "variables": variables}}))  # fmt: skip

    def until_complete(self, op_id: str) -> list[dict[str, Any]]:
        """Payloads of `next` messages of `op_id` until its `complete` (an `error` is raised)."""
        out = []
        while True:
            m = self.recv()
            if m.get("id") != op_id:
                continue
            if m["type"] == "complete":
                return out
            if m["type"] == "error":
                raise AssertionError(m["payload"])
            out.append(m["payload"])

    def close(self) -> None:
        self.ws.close()
