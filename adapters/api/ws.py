"""The graphql-transport-ws protocol at /graphql: connection_init (with the API key), ping/pong, subscribe,
complete. Live subscriptions go to the fan-out hub; `backtestProgress`, queries and mutations run through
strawberry's executor (one result each, or a few progress updates)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from graphql import DocumentNode, FieldNode, GraphQLError, OperationDefinitionNode, OperationType
from graphql.execution.values import get_argument_values, get_variable_values

from adapters.api.documents import Documents
from adapters.api.http import SERVER_SEND
from adapters.api.hub import Client, Hub, Subscriber
from adapters.api.keys import Role
from adapters.api.schema import LIVE_FIELDS, schema
from adapters.api.services import ApiContext, ApiError, ApiServices
from adapters.api.wire import frame_writer

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT = 5.0
log = logging.getLogger("cse.api.ws")


def _bearer(params: Any) -> str | None:
    if not isinstance(params, dict):
        return None
    key = params.get("apiKey") or params.get("Authorization") or params.get("authorization")
    if isinstance(key, str) and key.lower().startswith("bearer "):
        key = key[7:]
    return key if isinstance(key, str) else None


async def serve_websocket(ws: WebSocket, services: ApiServices, hub: Hub, documents: Documents) -> None:
    if PROTOCOL not in ws.scope.get("subprotocols", []):
        await ws.close(4406, "Subprotocol not acceptable")
        return
    await ws.accept(subprotocol=PROTOCOL)
    try:
        init = json.loads(await asyncio.wait_for(ws.receive_text(), INIT_TIMEOUT))
    except (TimeoutError, ValueError, WebSocketDisconnect):
        await _close(ws, 4408, "Connection initialisation timeout")
        return
    if init.get("type") != "connection_init":
        await _close(ws, 4400, "expected connection_init")
        return
    context = ApiContext(services, services.keys.authenticate(_bearer(init.get("payload"))))
    client = Client(_sender(ws), lambda code, reason: _close(ws, code, reason),
                    write=frame_writer(ws.scope.get(SERVER_SEND)))  # fmt: skip
    await ws.send_text('{"type":"connection_ack"}')
    active: dict[str, Any] = {}
    try:
        while True:
            message = json.loads(await ws.receive_text())
            kind, op_id = message.get("type"), message.get("id")
            if kind == "ping":
                client.offer('{"type":"pong"}')
            elif kind == "complete":
                stop = active.pop(op_id, None)
                if stop is not None:
                    stop()
            elif kind == "subscribe":
                if not isinstance(op_id, str) or op_id in active:
                    await _close(ws, 4409, f"Subscriber for {op_id} already exists")
                    return
                _subscribe(context, hub, documents, client, active, op_id, message.get("payload") or {})
            elif kind != "pong":
                await _close(ws, 4400, f"unknown message type {kind!r}")
                return
    except (WebSocketDisconnect, RuntimeError, ValueError):
        pass
    finally:
        for stop in active.values():
            stop()
        client.stop()


def _sender(ws: WebSocket) -> Callable[[str], Awaitable[None]]:
    """Text messages straight to the server's ASGI send once the connection is accepted (see SERVER_SEND)."""
    send = ws.scope.get(SERVER_SEND)
    if send is None:
        return ws.send_text

    def send_text(text: str) -> Awaitable[None]:
        return send({"type": "websocket.send", "text": text})  # type: ignore[no-any-return]

    return send_text


def _error(client: Client, op_id: str, message: str) -> None:
    client.offer(json.dumps({"id": op_id, "type": "error", "payload": [{"message": message}]}))


def _subscribe(context: ApiContext, hub: Hub, documents: Documents, client: Client, active: dict[str, Any],
               op_id: str, payload: dict[str, Any]) -> None:  # fmt: skip
    name = payload.get("operationName")
    prepared = documents.prepare(str(payload.get("query", "")), name if isinstance(name, str) else None)
    if isinstance(prepared, list):
        client.offer(json.dumps({"id": op_id, "type": "error", "payload": [e.formatted for e in prepared]}))
        return
    # equal documents are one object (the cache's), which is what lets the hub execute them once for all
    document, operation = prepared.document, prepared.operation
    variables = payload.get("variables") or {}
    fields = [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]
    live = operation.operation == OperationType.SUBSCRIPTION and len(fields) == 1 and \
        fields[0].name.value in LIVE_FIELDS  # fmt: skip
    if operation.operation == OperationType.SUBSCRIPTION:
        try:
            context.require(Role.viewer, "subscriptions")
        except ApiError as exc:
            _error(client, op_id, str(exc))
            return
    if live:
        _live(context, hub, client, active, op_id, document, operation, fields[0], variables)
    else:
        task = asyncio.create_task(_execute(context, client, active, op_id, payload, operation))
        active[op_id] = task.cancel


def _live(context: ApiContext, hub: Hub, client: Client, active: dict[str, Any], op_id: str,
          document: DocumentNode, operation: OperationDefinitionNode, field: FieldNode,
          variables: dict[str, Any]) -> None:  # fmt: skip
    definition = schema._schema.subscription_type.fields[field.name.value]  # type: ignore[union-attr]
    coerced = get_variable_values(schema._schema, operation.variable_definitions or (), variables)
    if isinstance(coerced, list):
        client.offer(json.dumps({"id": op_id, "type": "error", "payload": [e.formatted for e in coerced]}))
        return
    try:
        args = get_argument_values(definition, field, coerced)
    except GraphQLError as exc:
        _error(client, op_id, exc.message)
        return
    types = tuple(args.get("types") or LIVE_FIELDS[field.name.value].types)
    ident = json.dumps(op_id)

    def ended() -> None:
        if active.pop(op_id, None) is not None:
            client.offer(f'{{"id":{ident},"type":"complete"}}')
            stop()

    sub = Subscriber(client, f'{{"id":{ident},"type":"next","payload":', ended)
    stop = hub.subscribe(sub, args["session"], document, variables, types, args.get("instrument"),
                         args.get("replaySpeed"), bool(args.get("fromStart")))  # fmt: skip
    active[op_id] = stop


async def _execute(context: ApiContext, client: Client, active: dict[str, Any], op_id: str,
                   payload: dict[str, Any], operation: OperationDefinitionNode) -> None:  # fmt: skip
    ident = json.dumps(op_id)
    try:
        if operation.operation == OperationType.SUBSCRIPTION:
            stream = await schema.subscribe(
                payload["query"],
                variable_values=payload.get("variables"),
                context_value=context,
                operation_name=payload.get("operationName"),
            )
            if not hasattr(stream, "__aiter__"):
                results: Any = [stream]
            else:
                results = stream
        else:
            results = [
                await schema.execute(
                    payload["query"],
                    variable_values=payload.get("variables"),
                    context_value=context,
                    operation_name=payload.get("operationName"),
                )
            ]
        async for result in _aiter(results):
            body: dict[str, Any] = {"data": result.data}
            if result.errors:
                body["errors"] = [e.formatted for e in result.errors]
            client.offer(f'{{"id":{ident},"type":"next","payload":{json.dumps(body, default=str)}}}')
        client.offer(f'{{"id":{ident},"type":"complete"}}')
    finally:
        active.pop(op_id, None)


async def _aiter(results: Any) -> Any:
    if hasattr(results, "__aiter__"):
        async for r in results:
            yield r
    else:
        for r in results:
            yield r


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    try:
        await ws.close(code, reason)
    except RuntimeError:
        pass  # already closed
