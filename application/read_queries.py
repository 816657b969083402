"""Ports of the query side: what the API asks of the read models and the time series, implemented where the
data lives (`projections/`). Rows are plain mappings named like the read-model columns, so a new column needs
no port change; the API picks the fields it exposes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

Row = Mapping[str, Any]


class Page(NamedTuple):
    """One page of a keyset-paginated list: `rows` in order, `has_next` when more follow the last one."""

    rows: list[Row]
    has_next: bool


@dataclass(frozen=True)
class OrderFilter:
    session_id: str | None = None
    status: str | None = None
    instrument: str | None = None
    venue: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None


Cursor = tuple[int, str]
"""Keyset position: (time ns, tie-breaking id) of the last row seen; the next page starts after it."""


class ReadModelQueries(Protocol):
    """Paginated lists take `columns`: the columns the caller reads (None: all). A page's rows hold those and
    the keyset columns, so a query reading a few fields does not decode the others."""

    async def sessions(self) -> list[Row]: ...

    async def orders(self, where: OrderFilter, first: int, after: Cursor | None,
                     columns: Sequence[str] | None = None) -> Page:
        """Orders by (created_ns, order_id)."""
        ...

    async def orders_by_id(self, order_ids: Sequence[str]) -> dict[str, Row]: ...

    async def order_events(self, order_ids: Sequence[str]) -> dict[str, list[Row]]:
        """History of each order in log order: one statement for any number of orders (the dataloader's)."""
        ...

    async def fills_of_orders(self, order_ids: Sequence[str]) -> dict[str, list[Row]]: ...

    async def fills(self, session_id: str, first: int, after: Cursor | None,
                    columns: Sequence[str] | None = None) -> Page:
        """Fills by (event_time_ns, event_id)."""
        ...

    async def positions(self, session_id: str) -> list[Row]: ...

    async def equity(self, session_id: str, first: int, after: Cursor | None,
                     columns: Sequence[str] | None = None) -> Page: ...

    async def signals(self, session_id: str, first: int, after: Cursor | None,
                      columns: Sequence[str] | None = None) -> Page: ...

    async def latest_spreads(self, session_id: str) -> list[Row]: ...

    async def risk_state(self, session_id: str) -> Row | None: ...

    async def risk_events(self, session_id: str, first: int, after: Cursor | None,
                          columns: Sequence[str] | None = None) -> Page: ...


class SeriesQueries(Protocol):
    """Time series (InfluxDB on the server path, the SQL `ts_points` table in the embedded default)."""

    async def series(
        self, measurement: str, session_id: str, tags: Mapping[str, str], last: int
    ) -> list[Row]:
        """The `last` most recent points of `measurement` in `session_id` whose tags include `tags`, oldest
        first; each row is {time_ns, tags, fields}."""
        ...
