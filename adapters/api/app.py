"""The FastAPI application: /graphql (HTTP queries and mutations through strawberry; websocket subscriptions
through the fan-out hub), /health, and the dashboard page at /dashboard."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from strawberry.fastapi import GraphQLRouter

from adapters.api.documents import Documents
from adapters.api.http import GraphQLHttp, bearer
from adapters.api.hub import Hub
from adapters.api.schema import schema
from adapters.api.services import ApiContext, ApiServices
from adapters.api.ws import serve_websocket

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("cse.api")


def create_app(
    services: ApiServices, *, graphiql: bool = False, cors_origins: list[str] | None = None
) -> FastAPI:
    # FastAPI's own OpenTelemetry off: our traces have their own provider (adapters/observability), and its
    # check for a global one on every request cost ~10% of an orders page's CPU
    app = FastAPI(title="CryptoSpreadEdge API", docs_url=None, redoc_url=None, openapi_url=None,
                  telemetry={"tracing": False, "metrics": False, "logs": False})  # fmt: skip
    documents = Documents(schema._schema)
    hub = Hub(schema._schema, services.feed, ApiContext(services, None))
    app.state.hub = hub

    async def context(request: Request) -> ApiContext:
        return ApiContext(services, services.keys.authenticate(bearer(request.headers)))

    @app.websocket("/graphql")
    async def graphql_ws(ws: WebSocket) -> None:  # declared before the router: this route wins
        await serve_websocket(ws, services, hub, documents)

    router: GraphQLRouter[Any, Any] = GraphQLRouter(schema, context_getter=context, graphql_ide="graphiql"
                                                    if graphiql else None, subscription_protocols=[])  # fmt: skip
    app.include_router(router, prefix="/graphql")

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "target": services.target, **services.public,
                             "live_channels": len(hub.channels)})  # fmt: skip

    @app.get("/dashboard")
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # JSON POSTs skip the router and strawberry's view (inside CORS and metrics, added after it)
    app.add_middleware(GraphQLHttp, schema=schema._schema, documents=documents, services=services)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type", "x-api-key"])  # fmt: skip
    return app
