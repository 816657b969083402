"""POST /graphql with a JSON body, straight on ASGI: read the body, look the key up, take the prepared
document from the cache, execute, answer with orjson. It sits inside the CORS and metrics middleware (so
both still apply) and in front of the router: FastAPI's routing and strawberry's HTTP view cost more than
the execution of a small query. Anything else at /graphql (GET, GraphiQL, another content type) goes on to
strawberry's router as before."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError, GraphQLSchema, OperationType

from adapters.api.documents import Documents
from adapters.api.executor import response, run
from adapters.api.services import ApiContext, ApiServices

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SERVER_SEND = "cse.server_send"
"""Scope key of a websocket's ASGI send as the server gave it (no framework wrapper is in between here): the
fan-out sends each event to 1,000 clients, and Starlette's checks and two exception-handler wrappers per
message were a sixth of that cost."""

MAX_BODY = 1024 * 1024
"""Bytes of a request body; a GraphQL document with its variables is far smaller."""


def bearer(headers: Mapping[str, str]) -> str | None:
    """The API key of a request: `Authorization: Bearer <key>`, or the `X-Api-Key` header."""
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return headers.get("x-api-key")


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class GraphQLHttp:
    """ASGI middleware answering JSON POSTs to /graphql itself."""

    def __init__(
        self, app: ASGIApp, schema: GraphQLSchema, documents: Documents, services: ApiServices
    ) -> None:
        self.app = app
        self.schema = schema
        self.documents = documents
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SERVER_SEND] = send
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/graphql":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
            await self.app(scope, receive, send)
            return
        try:
            body = await self.answer(headers, await _body(receive))
            status = 200
        except _BadRequest as exc:
            body, status = orjson.dumps({"errors": [{"message": str(exc)}]}), exc.status
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def answer(self, headers: dict[str, str], raw: bytes) -> bytes:
        try:
            request = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _BadRequest(400, "Unable to parse request body as JSON") from exc
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            raise _BadRequest(400, "No GraphQL query found in the request")
        variables, name = request.get("variables"), request.get("operationName")
        if variables is not None and not isinstance(variables, dict):
            raise _BadRequest(400, "variables must be a JSON object")
        if name is not None and not isinstance(name, str):
            raise _BadRequest(400, "operationName must be a string")
        prepared = self.documents.prepare(request["query"], name)
        if isinstance(prepared, list):
            return response(None, prepared)
        if prepared.operation.operation == OperationType.SUBSCRIPTION:
            message = "subscriptions are served over graphql-transport-ws at /graphql"
            return response(None, [GraphQLError(message)])
        context = ApiContext(self.services, self.services.keys.authenticate(bearer(headers)))
        result = run(self.schema, prepared, variables, context)
        if not isinstance(result, ExecutionResult):
            result = await result
        return response(result.data, result.errors)


async def _body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _BadRequest(400, "the client went away before sending the whole request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _BadRequest(413, f"request body over {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
