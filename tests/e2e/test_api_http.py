"""POST /graphql on the lean ASGI path: bad requests get a clear 4xx, a named operation is picked, a
subscription is pointed at the websocket, the key and CORS still apply, and GET still reaches strawberry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api_support import SESSION, Server, running_server, sample_home


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = sample_home(tmp_path_factory.mktemp("api-http"), orders=3)
    with running_server(settings, cors_origins=["https://desk.example"]) as srv:
        yield srv


def _post(server: Server, body: Any, **headers: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {server.keys['viewer']}", **headers}
    if isinstance(body, bytes):
        return httpx.post(f"{server.url}/graphql", content=body,
                          headers={"content-type": "application/json", **headers})  # fmt: skip
    return httpx.post(f"{server.url}/graphql", json=body, headers=headers)


def test_bad_requests_are_refused_clearly(server: Server) -> None:
    r = _post(server, b"{not json")
    assert r.status_code == 400 and r.json()["errors"][0]["message"] == "Unable to parse request body as JSON"
    r = _post(server, {"variables": {}})
    assert (
        r.status_code == 400 and r.json()["errors"][0]["message"] == "No GraphQL query found in the request"
    )
    r = _post(server, {"query": "{ viewerRole }", "variables": [1]})
    assert r.status_code == 400 and "variables" in r.json()["errors"][0]["message"]
    r = _post(server, b'{"query": "{ viewerRole }", "pad": "' + b"x" * (1024 * 1024) + b'"}')
    assert r.status_code == 413


def test_named_operation_and_the_key_decide(server: Server) -> None:
    doc = "query Role { viewerRole } query Sessions { sessions { sessionId } }"
    r = _post(server, {"query": doc, "operationName": "Role"})
    assert r.status_code == 200 and r.json() == {"data": {"viewerRole": "viewer"}}
    r = _post(server, {"query": doc, "operationName": "Sessions"}, authorization="Bearer cse_0000_forged")
    assert r.json()["data"] is None and "requires an API key" in r.json()["errors"][0]["message"]
    r = _post(server, {"query": doc})
    assert "operationName" in r.json()["errors"][0]["message"]


def test_a_subscription_over_http_is_pointed_at_the_websocket(server: Server) -> None:
    r = _post(server, {"query": "subscription($s: String!) { events(session: $s) { type } }",
                       "variables": {"s": SESSION}})  # fmt: skip
    assert "graphql-transport-ws" in r.json()["errors"][0]["message"]


def test_cors_headers_on_the_answer_and_get_reaches_strawberry(server: Server) -> None:
    r = _post(server, {"query": "{ viewerRole }"}, origin="https://desk.example")
    assert r.headers["access-control-allow-origin"] == "https://desk.example"
    r = httpx.get(f"{server.url}/graphql", params={"query": "{ viewerRole }"},
                  headers={"authorization": f"Bearer {server.keys['viewer']}"})  # fmt: skip
    assert r.status_code == 200 and r.json()["data"] == {"viewerRole": "viewer"}


def test_a_charset_and_the_x_api_key_header_are_understood(server: Server) -> None:
    r = httpx.post(f"{server.url}/graphql", content='{"query": "{ viewerRole }"}',
                   headers={"content-type": "application/json; charset=utf-8",
                            "x-api-key": server.keys["admin"]})  # fmt: skip
    assert r.json() == {"data": {"viewerRole": "admin"}}
