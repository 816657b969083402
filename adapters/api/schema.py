"""The GraphQL schema: queries over the read models and the log, mutations that append operator commands,
subscriptions to a session's events. Committed as SDL in docs/graphql/schema.graphql (`cse serve
--print-schema`); a test keeps the two equal."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import strawberry
from graphql import GraphQLError
from pydantic import ValidationError
from strawberry.extensions import AddValidationRules, MaskErrors, ParserCache, ValidationCache
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from adapters.api.executor import MASKED, internal
from adapters.api.jobs import RunState
from adapters.api.keys import Role
from adapters.api.limits import DEFAULT_PAGE, MAX_PAGE, CostAndDepthLimit
from adapters.api.selection import node_columns
from adapters.api.services import ApiContext, ApiError
from adapters.api.types import (
    BIG_INT,
    BacktestRun,
    BigInt,
    CommandReceipt,
    Connection,
    Edge,
    EquitySample,
    Fill,
    LogEvent,
    Order,
    PageInfo,
    Position,
    RiskEvent,
    RiskState,
    SeriesPoint,
    Session,
    Signal,
    Spread,
    connection,
    decode_cursor,
    encode_cursor,
    from_row,
    log_event,
)
from application.audit import LogPosition, events_by_type
from application.command_timing import refuse_untimed_after_recorded_data
from application.operator_commands import CommandRefused, append_operator_command
from application.read_queries import OrderFilter, Page
from domain.events import (
    CancelOrder,
    EngageKillSwitch,
    Envelope,
    EventBase,
    ReleaseDrawdownHalt,
    ReleaseKillSwitch,
    StartStrategy,
    StopStrategy,
    UpdateRiskLimits,
)
from domain.values import RiskLimits


def _ctx(info: Info) -> ApiContext:
    ctx: ApiContext = info.context
    return ctx


def _page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise ApiError(f"first must be between 1 and {MAX_PAGE}, got {first}")
    return first


T = TypeVar("T")


async def _connection(info: Info, cls: type[T], read: Callable[[tuple[str, ...] | None], Awaitable[Page]],
                      time_key: str, id_key: str) -> Connection[T]:  # fmt: skip
    """One page of a connection field, read for the node fields the query selects (`selection.node_columns`)."""
    columns = node_columns(info._raw_info)
    page = await read(columns)
    return connection(cls, page.rows, page.has_next, time_key, id_key, columns)


def _viewer(info: Info) -> ApiContext:
    ctx = _ctx(info)
    ctx.require(Role.viewer, "queries")
    return ctx


def _run(state: RunState) -> BacktestRun:
    return BacktestRun(run_id=state.run_id, session=state.session, status=state.status, progress=state.progress,
                       events_done=state.events_done, events_total=state.events_total, error=state.error,
                       summary=state.summary)  # fmt: skip


@strawberry.type
class Query:
    @strawberry.field(description="The role of the presented API key (null without a valid key).")
    def viewer_role(self, info: Info) -> str | None:
        principal = _ctx(info).principal
        return principal.role.name if principal else None

    @strawberry.field(description="Sessions (imports, backtest runs, live) with their run metrics.")
    async def sessions(self, info: Info) -> list[Session]:
        return [from_row(Session, r) for r in await _viewer(info).services.read_models.sessions()]

    @strawberry.field(description="Orders by creation time, Relay cursor pagination.")
    async def orders(self, info: Info, session: str | None = None, status: str | None = None,
                     instrument: str | None = None, venue: str | None = None, since_ns: BigInt | None = None,
                     until_ns: BigInt | None = None, first: int = DEFAULT_PAGE,
                     after: str | None = None) -> Connection[Order]:  # fmt: skip
        where = OrderFilter(session, status, instrument, venue, since_ns, until_ns)
        read_models = _viewer(info).services.read_models
        return await _connection(info, Order, lambda columns: read_models.orders(
            where, _page_size(first), decode_cursor(after), columns), "created_ns", "order_id")  # fmt: skip

    @strawberry.field
    async def order(self, info: Info, order_id: str) -> Order | None:
        row = await _viewer(info).orders.load(order_id)
        return from_row(Order, row) if row else None

    @strawberry.field
    async def fills(self, info: Info, session: str, first: int = DEFAULT_PAGE,
                    after: str | None = None) -> Connection[Fill]:  # fmt: skip
        read_models = _viewer(info).services.read_models
        return await _connection(info, Fill, lambda columns: read_models.fills(
            session, _page_size(first), decode_cursor(after), columns), "event_time_ns", "event_id")  # fmt: skip

    @strawberry.field(description="Positions and balances per account, venue and asset.")
    async def positions(self, info: Info, session: str) -> list[Position]:
        return [from_row(Position, r) for r in await _viewer(info).services.read_models.positions(session)]

    @strawberry.field(description="PnL and equity samples in time order.")
    async def equity(self, info: Info, session: str, first: int = DEFAULT_PAGE,
                     after: str | None = None) -> Connection[EquitySample]:  # fmt: skip
        read_models = _viewer(info).services.read_models
        return await _connection(info, EquitySample, lambda columns: read_models.equity(
            session, _page_size(first), decode_cursor(after), columns), "event_time_ns", "event_id")  # fmt: skip

    @strawberry.field
    async def signals(self, info: Info, session: str, first: int = DEFAULT_PAGE,
                      after: str | None = None) -> Connection[Signal]:  # fmt: skip
        read_models = _viewer(info).services.read_models
        return await _connection(info, Signal, lambda columns: read_models.signals(
            session, _page_size(first), decode_cursor(after), columns), "event_time_ns", "opportunity_id")  # fmt: skip

    @strawberry.field(description="The latest spread per instrument and venue pair.")
    async def spreads(self, info: Info, session: str) -> list[Spread]:
        return [from_row(Spread, r) for r in await _viewer(info).services.read_models.latest_spreads(session)]

    @strawberry.field(
        description="The last points of a time series (measurements: spread, mid, equity, fills,"
        " signals), oldest first; `tags` narrows to the series whose tags include them."
    )
    async def series(self, info: Info, session: str, measurement: str, tags: JSON | None = None,
                     last: int = DEFAULT_PAGE) -> list[SeriesPoint]:  # fmt: skip
        wanted = {str(k): str(v) for k, v in (tags or {}).items()}
        rows = await _viewer(info).services.series.series(measurement, session, wanted, _page_size(last))
        return [SeriesPoint(time_ns=r["time_ns"], tags=r["tags"], fields=r["fields"]) for r in rows]

    @strawberry.field(description="Kill switch, rejections and breaches of a session.")
    async def risk_state(self, info: Info, session: str) -> RiskState | None:
        row = await _viewer(info).services.read_models.risk_state(session)
        return from_row(RiskState, row) if row else None

    @strawberry.field
    async def risk_events(self, info: Info, session: str, first: int = DEFAULT_PAGE,
                          after: str | None = None) -> Connection[RiskEvent]:  # fmt: skip
        read_models = _viewer(info).services.read_models
        return await _connection(info, RiskEvent, lambda columns: read_models.risk_events(
            session, _page_size(first), decode_cursor(after), columns), "event_time_ns", "event_id")  # fmt: skip

    @strawberry.field(
        description="Raw events of a session from the log, for audit; `types` are event types,"
        " a trailing * matches a prefix (`order.*`). Cursor = stream and offset."
    )
    async def events(self, info: Info, session: str, types: list[str] | None = None, first: int = DEFAULT_PAGE,
                     after: str | None = None) -> Connection[LogEvent]:  # fmt: skip
        ctx = _viewer(info)
        position = decode_cursor(after)
        start = LogPosition(position[1], position[0]) if position else None

        def read() -> Any:
            with ctx.services.open_log() as log:
                return events_by_type(log, session, types, _page_size(first), start)

        page = await asyncio.to_thread(read)
        edges = [Edge(cursor=encode_cursor(s.offset, stream), node=log_event(session, s.offset, s.record))
                 for stream, s in page.records]  # fmt: skip
        end = edges[-1].cursor if edges else None
        return Connection(edges=edges, page_info=PageInfo(has_next_page=page.has_next, end_cursor=end))

    @strawberry.field(description="Backtest runs submitted through the API, with progress and result.")
    def backtest_runs(self, info: Info) -> list[BacktestRun]:
        return [_run(s) for s in _viewer(info).services.jobs.runs.values()]


_ACCOUNT = strawberry.argument(description="The account the command concerns; null: every account.")
_AT = strawberry.argument(
    description="The command's event time (ns since the epoch); null: now. A recorded import needs it: a"
    " command timed now would come after all its data."
)


async def _command(info: Info, role: Role, what: str, session: str, at_ns: int | None,
                   build: Any, account: str | None = None) -> CommandReceipt:  # fmt: skip
    ctx = _ctx(info)
    principal = ctx.require(role, what)
    operator = f"api:{principal.name}"
    if account is not None and not account.strip():
        raise ApiError(f"{what}: account is empty; name the account, or leave it null for every account")

    def append() -> EventBase:
        with ctx.services.open_log() as log:
            if not log.streams(session):  # a mistyped id would otherwise start a session of its own
                raise ApiError(f"{what}: no session {session!r} in the event log")
            # the wall clock, here only: the time a command sent without atNs enters the log
            time_ns = time.time_ns() if at_ns is None else at_ns
            if at_ns is None:
                refuse_untimed_after_recorded_data(log, session, time_ns, "pass atNs")
            return append_operator_command(log, session, time_ns, lambda env: build(env, operator))

    try:
        command = await asyncio.to_thread(append)
    except CommandRefused as exc:
        raise ApiError(f"{what}: {exc}") from exc
    except ValidationError as exc:
        raise ApiError(f"{what}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    return CommandReceipt(command_id=str(command.envelope.event_id), session_id=session, type=command.type,
                          sequence=command.envelope.sequence, account=account)  # fmt: skip


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Engage the kill switch of a session, or of one account in it (admin).")
    async def engage_kill_switch(
        self, info: Info, session: str, reason: str,
        account: Annotated[str | None, _ACCOUNT] = None, at_ns: Annotated[BigInt | None, _AT] = None,
    ) -> CommandReceipt:  # fmt: skip
        return await _command(info, Role.admin, "engageKillSwitch", session, at_ns,
                              lambda env, op: EngageKillSwitch(envelope=env, reason=reason, operator=op,
                                                               account=account), account)  # fmt: skip

    @strawberry.mutation(
        description="Release the kill switch of a session, or of one account in it (admin); a global release"
        " leaves an account's own switch engaged."
    )
    async def release_kill_switch(
        self, info: Info, session: str, reason: str,
        account: Annotated[str | None, _ACCOUNT] = None, at_ns: Annotated[BigInt | None, _AT] = None,
    ) -> CommandReceipt:  # fmt: skip
        return await _command(info, Role.admin, "releaseKillSwitch", session, at_ns,
                              lambda env, op: ReleaseKillSwitch(envelope=env, reason=reason, operator=op,
                                                                account=account), account)  # fmt: skip

    @strawberry.mutation(
        description="Release a latched drawdown halt of a session, or of one account in it (admin); the"
        " drawdown is measured again from the equity at release."
    )
    async def release_drawdown_halt(
        self, info: Info, session: str, reason: str,
        account: Annotated[str | None, _ACCOUNT] = None, at_ns: Annotated[BigInt | None, _AT] = None,
    ) -> CommandReceipt:  # fmt: skip
        return await _command(info, Role.admin, "releaseDrawdownHalt", session, at_ns,
                              lambda env, op: ReleaseDrawdownHalt(envelope=env, reason=reason, operator=op,
                                                                  account=account), account)  # fmt: skip

    @strawberry.mutation(
        description="Replace the risk limits of a session, or of one account in it (admin); `limits` holds"
        " the fields of the risk limits, missing ones keep their defaults."
    )
    async def update_risk_limits(
        self, info: Info, session: str, limits: JSON,
        account: Annotated[str | None, _ACCOUNT] = None, at_ns: Annotated[BigInt | None, _AT] = None,
    ) -> CommandReceipt:  # fmt: skip
        def build(env: Envelope, op: str) -> EventBase:
            return UpdateRiskLimits(envelope=env, limits=RiskLimits.model_validate(limits), operator=op,
                                    account=account)  # fmt: skip

        return await _command(info, Role.admin, "updateRiskLimits", session, at_ns, build, account)

    @strawberry.mutation(description="Start a strategy, of every account or of one (trader).")
    async def start_strategy(
        self, info: Info, session: str, strategy_id: str,
        account: Annotated[str | None, _ACCOUNT] = None, at_ns: Annotated[BigInt | None, _AT] = None,
    ) -> CommandReceipt:  # fmt: skip
        return await _command(info, Role.trader, "startStrategy", session, at_ns,
                              lambda env, op: StartStrategy(envelope=env, strategy_id=strategy_id, operator=op,
                                                            account=account), account)  # fmt: skip

    @strawberry.mutation(description="Stop a strategy, of every account or of one (trader).")
    async def stop_strategy(
        self, info: Info, session: str, strategy_id: str,
        account: Annotated[str | None, _ACCOUNT] = None, at_ns: Annotated[BigInt | None, _AT] = None,
    ) -> CommandReceipt:  # fmt: skip
        return await _command(info, Role.trader, "stopStrategy", session, at_ns,
                              lambda env, op: StopStrategy(envelope=env, strategy_id=strategy_id, operator=op,
                                                           account=account), account)  # fmt: skip

    @strawberry.mutation(description="Cancel an order (trader).")
    async def cancel_order(self, info: Info, session: str, order_id: str, venue: str, reason: str = "",
                           at_ns: Annotated[BigInt | None, _AT] = None) -> CommandReceipt:  # fmt: skip
        try:
            oid = uuid.UUID(order_id)
        except ValueError as exc:
            raise ApiError(f"cancelOrder: orderId {order_id!r} is not a UUID") from exc
        return await _command(
            info,
            Role.trader,
            "cancelOrder",
            session,
            at_ns,
            lambda env, _: CancelOrder(envelope=env, order_id=oid, venue=venue, reason=reason),
        )

    @strawberry.mutation(
        description="Run a backtest of `session` with a run configuration (TOML) in a worker"
        " process (trader); follow it with `backtestRuns` or `backtestProgress`."
    )
    async def submit_backtest(
        self, info: Info, session: str, config: str, run_id: str | None = None
    ) -> BacktestRun:
        ctx = _ctx(info)
        ctx.require(Role.trader, "submitBacktest")
        run = run_id or f"{session}.api-{uuid.uuid4().hex[:12]}"
        return _run(ctx.services.jobs.submit(run, session, config))


@dataclass(frozen=True)
class LiveFilter:
    """Which records a subscription field delivers: event types (a trailing `*` is a prefix) and payload
    fields that must be equal (e.g. instrument)."""

    types: tuple[str, ...]


LIVE_FIELDS: dict[str, LiveFilter] = {
    "events": LiveFilter(()),
    "ticks": LiveFilter(("market.quote", "market.trade")),
    "spreads": LiveFilter(("signal.spread_opportunity",)),
    "signals": LiveFilter(("signal.*",)),
    "orderUpdates": LiveFilter(("order.*", "command.place_order", "command.cancel_order")),
    "fills": LiveFilter(("order.partially_filled", "order.filled")),
    "equity": LiveFilter(("portfolio.*",)),
    "risk": LiveFilter(("risk.*", "command.engage_kill_switch", "command.release_kill_switch",
                        "command.release_drawdown_halt", "command.update_risk_limits")),
}  # fmt: skip
"""The subscription fields served by the fan-out hub (adapters.api.hub), not by strawberry's executor."""


async def _served_by_hub() -> AsyncGenerator[LogEvent, None]:
    raise GraphQLError("subscriptions are served over graphql-transport-ws at /graphql")
    yield  # pragma: no cover - makes this an async generator


_LIVE_ARGS = "replaySpeed: replay at this multiple of the recorded pace, 0 = unpaced; else follow live"


def _live(name: str, doc: str) -> Any:
    @strawberry.subscription(name=name, description=f"{doc} ({_LIVE_ARGS}).")
    def field(self: Any, session: str, replay_speed: float | None = None, from_start: bool = False,
              instrument: str | None = None, types: list[str] | None = None) -> AsyncGenerator[LogEvent, None]:  # fmt: skip
        return _served_by_hub()

    return field


@strawberry.type
class Subscription:
    events = _live("events", "Every event of a session")
    ticks = _live("ticks", "Quotes and trades")
    spreads = _live("spreads", "Spread opportunities per venue pair")
    signals = _live("signals", "Strategy signals")
    order_updates = _live("orderUpdates", "Order commands and order events")
    fills = _live("fills", "Fills")
    equity = _live("equity", "PnL and equity samples")
    risk = _live("risk", "Risk decisions, kill switch, breaches, limit changes")

    @strawberry.subscription(
        description="A submitted backtest run, each time its progress or status changes."
    )
    async def backtest_progress(self, info: Info, run_id: str) -> AsyncGenerator[BacktestRun, None]:
        ctx = _ctx(info)
        jobs = ctx.services.jobs
        if run_id not in jobs.runs:
            raise ApiError(f"no backtest run {run_id!r}")
        last: RunState | None = None
        while True:
            state = jobs.runs[run_id]
            if state != last:
                last = state
                yield _run(state)
            if state.finished:
                return
            await jobs.wait_change(1.0)


schema = strawberry.Schema(
    query=Query, mutation=Mutation, subscription=Subscription,
    config=StrawberryConfig(scalar_map={BigInt: BIG_INT}),
    # parsing and validation (with the limits) are cached per query text: a dashboard sends the same few queries
    extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256),
                lambda: AddValidationRules([CostAndDepthLimit]),
                lambda: MaskErrors(should_mask_error=internal, error_message=MASKED)],
)  # fmt: skip
