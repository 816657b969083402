"""GraphQL object types of the read models and of the log. Built from read-model rows by field name
(`from_row`), so a column added to a read model shows up here by adding one field."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Sequence
from decimal import Decimal
from functools import cache, cached_property
from typing import Any, Generic, NewType, TypeVar

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from application.ports import LogRecord
from application.read_queries import Cursor, Row

BigInt = NewType("BigInt", int)
BIG_INT = strawberry.scalar(
    name="BigInt",
    serialize=str,
    parse_value=int,
    description="A 64-bit integer (nanoseconds since the epoch, offsets), as a string: JSON numbers lose digits"
    " past 2^53.",
)
"""The GraphQL scalar of `BigInt` (mapped in the schema's configuration)."""

T = TypeVar("T")


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)  # resolver fields are not init fields


def from_row(cls: type[T], row: Row, fields: Sequence[str] | None = None) -> T:
    """The GraphQL object of a read-model row: its fields set straight from the columns of the same names
    (a page of orders builds 100 objects of 23 fields; the dataclass constructor doubled the cost). `fields`:
    only those, the others left unset (a page read for a query's fields only, `selection.node_columns`)."""
    obj = cls.__new__(cls)
    try:
        obj.__dict__.update({k: row[k] for k in (_field_names(cls) if fields is None else fields)})
    except KeyError as exc:
        raise TypeError(f"{cls.__name__}: the read model has no column {exc.args[0]!r}") from exc
    return obj


def encode_cursor(time_ns: int, ident: str) -> str:
    return base64.urlsafe_b64encode(f"{time_ns}:{ident}".encode()).decode()


def decode_cursor(cursor: str | None) -> Cursor | None:
    if cursor is None:
        return None
    try:
        time_ns, ident = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
        return int(time_ns), ident
    except ValueError as exc:
        from adapters.api.services import ApiError

        raise ApiError(f"cursor {cursor!r} is not one this API returned") from exc


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo


class _RowEdge(Edge[Any]):
    """An edge whose cursor is encoded when it is read: most queries read a page's end cursor only, and 100
    cursors encoded per page were a tenth of an orders page's CPU."""

    def __init__(self, node: Any, time_ns: int, ident: object) -> None:
        self.node = node
        self._at = (time_ns, ident)

    @property  # type: ignore[override]
    def cursor(self) -> str:
        return encode_cursor(self._at[0], str(self._at[1]))


def connection(cls: type[T], rows: list[Row], has_next: bool, time_key: str, id_key: str,
               fields: Sequence[str] | None = None) -> Connection[T]:  # fmt: skip
    edges: list[Edge[T]] = [_RowEdge(from_row(cls, r, fields), r[time_key], r[id_key]) for r in rows]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None),
    )


@strawberry.type
class Session:
    session_id: str
    mode: str | None
    status: str
    config_hash: str | None
    code_version: str | None
    parameters: str | None
    started_ns: BigInt | None
    ended_ns: BigInt | None
    input_events: BigInt | None
    derived_events: BigInt | None
    digest: str | None


@strawberry.type
class OrderEvent:
    event_id: str
    event_type: str
    event_time_ns: BigInt
    status_after: str
    detail: str
    stream: str
    log_offset: BigInt


@strawberry.type
class Fill:
    event_id: str
    session_id: str
    order_id: str
    venue: str
    venue_trade_id: str
    account: str
    instrument: str
    asset: str
    side: str
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: str
    event_time_ns: BigInt


@strawberry.type
class Order:
    order_id: str
    session_id: str
    account: str
    strategy_id: str
    venue: str
    instrument: str
    side: str
    order_type: str
    time_in_force: str
    quantity: Decimal | None
    limit_price: Decimal | None
    reduce_only: bool
    status: str
    venue_order_id: str | None
    filled_quantity: Decimal
    leaves_quantity: Decimal | None
    avg_fill_price: Decimal | None
    notional: Decimal
    fees: Decimal
    reason: str
    created_ns: BigInt
    updated_ns: BigInt
    event_count: int

    @strawberry.field(description="Every event of the order, in log order.")
    async def history(self, info: Info) -> list[OrderEvent]:
        rows = await info.context.order_history.load(self.order_id)
        return [from_row(OrderEvent, r) for r in rows]

    @strawberry.field
    async def fills(self, info: Info) -> list[Fill]:
        rows = await info.context.order_fills.load(self.order_id)
        return [from_row(Fill, r) for r in rows]


@strawberry.type
class Position:
    session_id: str
    account: str
    venue: str
    asset: str
    quote: str
    instrument: str
    quantity: Decimal
    cost_basis: Decimal
    avg_cost: Decimal | None
    realized_pnl: Decimal
    fees: Decimal
    fill_count: int
    updated_ns: BigInt


@strawberry.type
class EquitySample:
    event_id: str
    account: str
    quote_currency: str
    equity: Decimal
    cash: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    event_time_ns: BigInt


@strawberry.type
class Signal:
    opportunity_id: str
    strategy_id: str
    instrument: str
    buy_venue: str
    sell_venue: str
    buy_price: Decimal
    sell_price: Decimal
    quantity: Decimal
    gross_edge_bps: Decimal
    net_edge_bps: Decimal
    event_time_ns: BigInt


@strawberry.type
class Spread:
    instrument: str
    buy_venue: str
    sell_venue: str
    buy_price: Decimal
    sell_price: Decimal
    quantity: Decimal
    gross_edge_bps: Decimal
    net_edge_bps: Decimal
    event_time_ns: BigInt
    count: int


@strawberry.type
class SeriesPoint:
    time_ns: BigInt
    tags: JSON
    fields: JSON


@strawberry.type
class RiskState:
    session_id: str
    kill_switch_engaged: bool
    kill_switch_reason: str
    kill_switch_changed_ns: BigInt | None
    checks_passed: int
    rejections: int
    last_rejection_rule: str | None
    last_rejection_detail: str | None
    breaches: int
    last_breach_drawdown: Decimal | None
    last_breach_action: str | None
    updated_ns: BigInt


@strawberry.type
class RiskEvent:
    event_id: str
    event_type: str
    order_id: str | None
    rule: str | None
    limit_value: Decimal | None
    actual_value: Decimal | None
    detail: str
    event_time_ns: BigInt


@strawberry.type(
    description="One record of the event log, any event type: the payload is its canonical JSON."
)
class LogEvent:
    session_id: str
    stream: str
    offset: BigInt
    type: str
    event_time_ns: BigInt
    payload: strawberry.Private[bytes]

    @cached_property
    def _decoded(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.payload)
        return decoded

    @strawberry.field
    def event_id(self) -> str | None:
        return self._decoded.get("envelope", {}).get("event_id")

    @strawberry.field(description="The event as logged (canonical JSON; amounts are decimal strings).")
    def data(self) -> JSON:
        return self._decoded


@strawberry.type
class CommandReceipt:
    command_id: str = strawberry.field(
        description="Event id of the command; follow its outcome by subscribing"
        " to the session's events (causation id = this id)."
    )
    session_id: str
    type: str
    sequence: BigInt
    account: str | None = strawberry.field(
        default=None,
        description="The account the command concerns; null: every account (or none, for a cancel).",
    )


@strawberry.type
class BacktestRun:
    run_id: str
    session: str
    status: str
    progress: float
    events_done: BigInt
    events_total: BigInt
    error: str | None
    summary: JSON | None


def log_event(session_id: str, offset: int, record: LogRecord) -> LogEvent:
    return LogEvent(session_id=session_id, stream=record.stream, offset=offset, type=record.event_type,
                    event_time_ns=record.event_time_ns, payload=record.payload)  # fmt: skip
