"""What the API runs on, handed in by the composition root (`adapters.entrypoints.api_commands`), and the
per-request context built from it. The API holds ports only: which database, log or feed sits behind them
is the composition root's choice."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from adapters.api.keys import KeyStore, Principal, Role
from application.live_feed import SessionFeed
from application.ports import EventLog
from application.read_queries import ReadModelQueries, SeriesQueries

if TYPE_CHECKING:
    from adapters.api.jobs import BacktestJobs


class ApiError(Exception):
    """A refusal or a bad request, shown to the client as it is; any other exception is masked."""


@dataclass
class ApiServices:
    read_models: ReadModelQueries
    series: SeriesQueries
    open_log: Callable[[], AbstractContextManager[EventLog]]
    feed: SessionFeed
    keys: KeyStore
    jobs: BacktestJobs
    target: str
    public: dict[str, Any] = field(default_factory=dict)
    """What /health may show (no DSN, no secret)."""


class ApiContext(BaseContext):
    def __init__(self, services: ApiServices, principal: Principal | None) -> None:
        super().__init__()
        self.services = services
        self.principal = principal
        q = services.read_models
        self.order_history: DataLoader[str, list[Any]] = DataLoader(
            load_fn=lambda ids: _listed(q.order_events, ids)
        )
        self.order_fills: DataLoader[str, list[Any]] = DataLoader(
            load_fn=lambda ids: _listed(q.fills_of_orders, ids)
        )
        self.orders: DataLoader[str, Any] = DataLoader(load_fn=lambda ids: _single(q.orders_by_id, ids))

    def require(self, role: Role, what: str) -> Principal:
        if self.principal is None:
            raise ApiError(f"{what} requires an API key (header `Authorization: Bearer <key>`) with the"
                           f" {role.name} role")  # fmt: skip
        if self.principal.role < role:
            raise ApiError(
                f"{what} requires the {role.name} role; this key has the {self.principal.role.name} role"
            )
        return self.principal


async def _listed(fetch: Callable[[list[str]], Any], ids: list[str]) -> list[list[Any]]:
    found = await fetch(list(ids))
    return [found.get(i, []) for i in ids]


async def _single(fetch: Callable[[list[str]], Any], ids: list[str]) -> list[Any]:
    found = await fetch(list(ids))
    return [found.get(i) for i in ids]
