"""Read models: what the log says, folded into tables the UI and the API query (SQLite or PostgreSQL).

One `MetaData` (`Base.metadata`) holds every table, so Alembic, `create_all` and the rebuild see the same set.
Conventions:
- Times are BIGINT nanoseconds UTC (`*_ns`), straight from the event envelope.
- Money and quantities are `Money`: NUMERIC(38, 18) on PostgreSQL, exact decimal text on SQLite (SQLite has
  no decimal type; its NUMERIC affinity would go through float). Python sees `Decimal` on both. Computed
  values (average cost, pro-rata cost) are rounded half-even to 18 places by the projector *before* they are
  stored, so the in-memory fold and what comes back from either database agree to the last digit.
- Natural keys are primary keys (order_id, event_id, opportunity_id, ...), so every write is an upsert and a
  replay of the same event is a no-op.
- No foreign keys: tables are rebuilt and swapped one by one (projections.rebuild).
"""

from __future__ import annotations

import uuid
from decimal import Context, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

SCALE = 18
QUANTUM = Decimal(1).scaleb(-SCALE)
_CTX = Context(prec=60)


def q18(value: Decimal) -> Decimal:
    """Round half-even to the stored scale (18 places); the one rounding rule of every computed amount."""
    return value.quantize(QUANTUM, context=_CTX)


class Money(TypeDecorator[Decimal]):
    """Exact decimal on both dialects: NUMERIC(38, 18) on PostgreSQL, decimal text on SQLite."""

    impl = Numeric(38, SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(80))
        return dialect.type_descriptor(Numeric(38, SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = q18(Decimal(value))
        if dialect.name == "sqlite":
            return format(value.normalize(_CTX), "f") if value else "0"
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value) if not isinstance(value, Decimal) else value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        # PostgreSQL's drivers hand NUMERIC over as Decimal already: no Python call per value read (an API
        # page of orders reads ~700 amounts)
        if dialect.name == "postgresql":
            return self.impl_instance.result_processor(dialect, coltype)
        return super().result_processor(dialect, coltype)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# -- orders -------------------------------------------------------------------------------------------------


class Order(Base):
    """Current state of an order: created by PlaceOrder, moved by the order events."""

    __tablename__ = "orders"
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(String(100), default="")
    strategy_id: Mapped[str] = mapped_column(String(100), default="")
    venue: Mapped[str] = mapped_column(String(100))
    instrument: Mapped[str] = mapped_column(String(100), default="")
    side: Mapped[str] = mapped_column(String(8), default="")
    order_type: Mapped[str] = mapped_column(String(16), default="")
    time_in_force: Mapped[str] = mapped_column(String(8), default="")
    quantity: Mapped[Decimal | None] = mapped_column(Money)
    limit_price: Mapped[Decimal | None] = mapped_column(Money)
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    leg_group_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(32))
    venue_order_id: Mapped[str | None] = mapped_column(String(200))
    filled_quantity: Mapped[Decimal] = mapped_column(Money)
    leaves_quantity: Mapped[Decimal | None] = mapped_column(Money)
    avg_fill_price: Mapped[Decimal | None] = mapped_column(Money)
    notional: Mapped[Decimal] = mapped_column(Money)
    fees: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_ns: Mapped[int] = mapped_column(BigInteger)
    updated_ns: Mapped[int] = mapped_column(BigInteger)
    event_count: Mapped[int] = mapped_column(Integer)
    last_event_id: Mapped[uuid.UUID] = mapped_column(Uuid)

    # the second serves the API's pages: a session's orders in (created_ns, order_id) order
    __table_args__ = (
        Index(None, "session_id", "status"),
        Index(None, "session_id", "created_ns", "order_id"),
    )


class OrderEventRow(Base):
    """Every event of every order (the order's history), in log order."""

    __tablename__ = "order_events"
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    session_id: Mapped[str] = mapped_column(String(200))
    stream: Mapped[str] = mapped_column(String(200))
    log_offset: Mapped[int] = mapped_column(BigInteger)
    sequence: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    event_time_ns: Mapped[int] = mapped_column(BigInteger)
    status_after: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index(None, "order_id", "event_time_ns"),)


class Fill(Base):
    """One row per execution; keyed by (session, venue, venue_trade_id), the venue's own id for a trade, so a
    fill reported twice (even under two event ids) counts once — as in domain.portfolio."""

    __tablename__ = "fills"
    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    venue: Mapped[str] = mapped_column(String(100), primary_key=True)
    venue_trade_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    account: Mapped[str] = mapped_column(String(100))
    instrument: Mapped[str] = mapped_column(String(100))
    asset: Mapped[str] = mapped_column(String(50))
    side: Mapped[str] = mapped_column(String(8))
    price: Mapped[Decimal] = mapped_column(Money)
    quantity: Mapped[Decimal] = mapped_column(Money)
    fee: Mapped[Decimal] = mapped_column(Money)
    fee_currency: Mapped[str] = mapped_column(String(20))
    liquidity: Mapped[str] = mapped_column(String(8))
    event_time_ns: Mapped[int] = mapped_column(BigInteger)

    # the second serves the API's pages: a session's fills in (event_time_ns, event_id) order
    __table_args__ = (Index(None, "order_id"), Index(None, "session_id", "event_time_ns", "event_id"))


class InstrumentRow(Base):
    """The specification of each instrument of a session, from its InstrumentDefined (latest wins)."""

    __tablename__ = "instruments"
    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    venue: Mapped[str] = mapped_column(String(100), primary_key=True)
    instrument: Mapped[str] = mapped_column(String(100), primary_key=True)
    base: Mapped[str] = mapped_column(String(20))
    quote: Mapped[str] = mapped_column(String(20))
    settlement: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(16))
    contract_size: Mapped[Decimal] = mapped_column(Money)
    tick_size: Mapped[Decimal] = mapped_column(Money)
    lot_size: Mapped[Decimal] = mapped_column(Money)
    min_notional: Mapped[Decimal] = mapped_column(Money)
    maker_fee_bps: Mapped[Decimal] = mapped_column(Money)
    taker_fee_bps: Mapped[Decimal] = mapped_column(Money)
    event_time_ns: Mapped[int] = mapped_column(BigInteger)


class PositionRow(Base):
    """Position per (session, account, venue, asset), folded from fills like domain.portfolio (asset = base for
    spot, the instrument for contracts): signed quantity in units (base units; quote-currency units for inverse
    contracts), signed cost basis in the settlement currency (`quote` column), average cost = cost / quantity
    (for inverse contracts: settlement coin per unit, the reciprocal of the entry price), realized PnL against
    the average cost, fees in the settlement currency (domain.portfolio.position_fee)."""

    __tablename__ = "positions"
    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account: Mapped[str] = mapped_column(String(100), primary_key=True)
    venue: Mapped[str] = mapped_column(String(100), primary_key=True)
    asset: Mapped[str] = mapped_column(String(50), primary_key=True)
    quote: Mapped[str] = mapped_column(String(20))
    instrument: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[Decimal] = mapped_column(Money)
    cost_basis: Mapped[Decimal] = mapped_column(Money)
    avg_cost: Mapped[Decimal | None] = mapped_column(Money)
    realized_pnl: Mapped[Decimal] = mapped_column(Money)
    fees: Mapped[Decimal] = mapped_column(Money)
    fill_count: Mapped[int] = mapped_column(Integer)
    updated_ns: Mapped[int] = mapped_column(BigInteger)


# -- signals, spreads ---------------------------------------------------------------------------------------


class Signal(Base):
    """Spread opportunities as the strategy saw them."""

    __tablename__ = "signals"
    opportunity_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    session_id: Mapped[str] = mapped_column(String(200))
    strategy_id: Mapped[str] = mapped_column(String(100))
    instrument: Mapped[str] = mapped_column(String(100))
    buy_venue: Mapped[str] = mapped_column(String(100))
    sell_venue: Mapped[str] = mapped_column(String(100))
    buy_price: Mapped[Decimal] = mapped_column(Money)
    sell_price: Mapped[Decimal] = mapped_column(Money)
    quantity: Mapped[Decimal] = mapped_column(Money)
    gross_edge_bps: Mapped[Decimal] = mapped_column(Money)
    net_edge_bps: Mapped[Decimal] = mapped_column(Money)
    event_time_ns: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "session_id", "event_time_ns"),)


class LatestSpread(Base):
    """The latest spread opportunity per (session, instrument, buy venue, sell venue): a later event time
    replaces an earlier one; equal times keep the one later in the log."""

    __tablename__ = "latest_spreads"
    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    instrument: Mapped[str] = mapped_column(String(100), primary_key=True)
    buy_venue: Mapped[str] = mapped_column(String(100), primary_key=True)
    sell_venue: Mapped[str] = mapped_column(String(100), primary_key=True)
    opportunity_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    buy_price: Mapped[Decimal] = mapped_column(Money)
    sell_price: Mapped[Decimal] = mapped_column(Money)
    quantity: Mapped[Decimal] = mapped_column(Money)
    gross_edge_bps: Mapped[Decimal] = mapped_column(Money)
    net_edge_bps: Mapped[Decimal] = mapped_column(Money)
    event_time_ns: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)


# -- risk ---------------------------------------------------------------------------------------------------


class RiskState(Base):
    """Per session: kill switch, the last rejection and the last drawdown breach, and counters."""

    __tablename__ = "risk_state"
    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kill_switch_engaged: Mapped[bool] = mapped_column(Boolean)
    kill_switch_reason: Mapped[str] = mapped_column(Text)
    kill_switch_changed_ns: Mapped[int | None] = mapped_column(BigInteger)
    kill_switch_accounts: Mapped[str] = mapped_column(Text, server_default="[]")
    """Accounts whose orders the kill switch blocks (global or their own switch): a sorted JSON list;
    `kill_switch_engaged` is true while it is not empty. Per account: `risk_kill_switches`."""
    checks_passed: Mapped[int] = mapped_column(Integer)
    rejections: Mapped[int] = mapped_column(Integer)
    last_rejection_order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    last_rejection_rule: Mapped[str | None] = mapped_column(String(100))
    last_rejection_limit: Mapped[Decimal | None] = mapped_column(Money)
    last_rejection_actual: Mapped[Decimal | None] = mapped_column(Money)
    last_rejection_detail: Mapped[str | None] = mapped_column(Text)
    last_rejection_ns: Mapped[int | None] = mapped_column(BigInteger)
    breaches: Mapped[int] = mapped_column(Integer)
    last_breach_drawdown: Mapped[Decimal | None] = mapped_column(Money)
    last_breach_limit: Mapped[Decimal | None] = mapped_column(Money)
    last_breach_action: Mapped[str | None] = mapped_column(String(20))
    last_breach_ns: Mapped[int | None] = mapped_column(BigInteger)
    updated_ns: Mapped[int] = mapped_column(BigInteger)


class RiskKillSwitchRow(Base):
    """Per session and account: the two kill switches risk holds for it (the global one, for every account,
    and the account's own), from KillSwitchEngaged/KillSwitchReleased (`scope`, `still_engaged`)."""

    __tablename__ = "risk_kill_switches"
    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account: Mapped[str] = mapped_column(String(200), primary_key=True)
    global_engaged: Mapped[bool] = mapped_column(Boolean)
    account_engaged: Mapped[bool] = mapped_column(Boolean)
    engaged: Mapped[bool] = mapped_column(Boolean)
    """Either switch: the account's orders are refused."""
    reason: Mapped[str] = mapped_column(Text)
    """Of the last change."""
    changed_ns: Mapped[int] = mapped_column(BigInteger)


class RiskEventRow(Base):
    """Rejections, breaches and kill-switch changes, one row each (the 'last N rejections' query)."""

    __tablename__ = "risk_events"
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    rule: Mapped[str | None] = mapped_column(String(100))
    limit_value: Mapped[Decimal | None] = mapped_column(Money)
    actual_value: Mapped[Decimal | None] = mapped_column(Money)
    detail: Mapped[str] = mapped_column(Text)
    event_time_ns: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "session_id", "event_time_ns"),)


# -- sessions, equity ---------------------------------------------------------------------------------------


class SessionRow(Base):
    __tablename__ = "sessions"
    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    mode: Mapped[str | None] = mapped_column(String(20))
    config_hash: Mapped[str | None] = mapped_column(String(128))
    model_hash: Mapped[str | None] = mapped_column(String(128))
    code_version: Mapped[str | None] = mapped_column(String(128))
    parameters: Mapped[str | None] = mapped_column(Text)
    started_ns: Mapped[int | None] = mapped_column(BigInteger)
    ended_ns: Mapped[int | None] = mapped_column(BigInteger)
    input_events: Mapped[int | None] = mapped_column(BigInteger)
    derived_events: Mapped[int | None] = mapped_column(BigInteger)
    digest: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(20))


class EquitySample(Base):
    __tablename__ = "equity_samples"
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(String(100))
    quote_currency: Mapped[str] = mapped_column(String(20))
    equity: Mapped[Decimal] = mapped_column(Money)
    cash: Mapped[Decimal] = mapped_column(Money)
    realized_pnl: Mapped[Decimal] = mapped_column(Money)
    unrealized_pnl: Mapped[Decimal] = mapped_column(Money)
    fees: Mapped[Decimal] = mapped_column(Money)
    event_time_ns: Mapped[int] = mapped_column(BigInteger)

    # the second serves the API's pages: a session's samples in (event_time_ns, event_id) order
    __table_args__ = (
        Index(None, "session_id", "account", "event_time_ns"),
        Index(None, "session_id", "event_time_ns", "event_id"),
    )


# -- time series (embedded default of projections.influx) --------------------------------------------------


class TimeseriesPoint(Base):
    """The InfluxDB point model on SQLite: one row per (measurement, tag set, time); rewriting overwrites."""

    __tablename__ = "ts_points"
    measurement: Mapped[str] = mapped_column(String(100), primary_key=True)
    tags: Mapped[str] = mapped_column(String(1000), primary_key=True)
    """Canonical tag set: `k=v` pairs sorted by key, joined by ','; the series key without the measurement."""
    time_ns: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    fields: Mapped[str] = mapped_column(Text)
    """Canonical JSON object of the fields (Decimals as strings)."""


# -- progress -----------------------------------------------------------------------------------------------


class ProjectionTracking(Base):
    """Last applied log offset per (projection, session, stream); written in the same transaction as the
    read-model rows it accounts for (for InfluxDB: after the batch was acknowledged)."""

    __tablename__ = "projection_tracking"
    projection: Mapped[str] = mapped_column(String(100), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    stream: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_offset: Mapped[int] = mapped_column(BigInteger)
    updated_ns: Mapped[int] = mapped_column(BigInteger)


class ProjectionDeadLetter(Base):
    """A log record a projection could not decode: kept with the reason and its original bytes instead of
    stopping the projection (a poison record would otherwise stop it forever). Written in the transaction
    that moves the tracking row past it, keyed by its log position, so a redelivery adds nothing."""

    __tablename__ = "projection_dead_letters"
    projection: Mapped[str] = mapped_column(String(100), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    stream: Mapped[str] = mapped_column(String(200), primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    recorded_ns: Mapped[int] = mapped_column(BigInteger)
    """Wall time it was set aside (operations only: never part of a read model's content)."""


READ_MODEL_TABLES: tuple[str, ...] = (
    "orders", "order_events", "fills", "instruments", "positions", "signals", "latest_spreads", "risk_state",
    "risk_kill_switches", "risk_events", "sessions", "equity_samples",
)  # fmt: skip
"""The tables the SQL projector writes (and the rebuild recreates), besides `projection_tracking`."""

TRACKING_TABLE = "projection_tracking"
DEAD_LETTER_TABLE = "projection_dead_letters"
TIMESERIES_TABLE = "ts_points"


def table(name: str) -> Table:
    return Base.metadata.tables[name]
