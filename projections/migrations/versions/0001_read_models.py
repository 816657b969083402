"""read models

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import projections.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "equity_samples",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("quote_currency", sa.String(length=20), nullable=False),
        sa.Column("equity", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("cash", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("realized_pnl", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("unrealized_pnl", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("fees", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("event_time_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_equity_samples")),
    )
    with op.batch_alter_table("equity_samples", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_equity_samples_session_id_account_event_time_ns"),
            ["session_id", "account", "event_time_ns"],
            unique=False,
        )

    op.create_table(
        "fills",
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("venue", sa.String(length=100), nullable=False),
        sa.Column("venue_trade_id", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("instrument", sa.String(length=100), nullable=False),
        sa.Column("asset", sa.String(length=50), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("price", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("quantity", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("fee", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("fee_currency", sa.String(length=20), nullable=False),
        sa.Column("liquidity", sa.String(length=8), nullable=False),
        sa.Column("event_time_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "venue", "venue_trade_id", name=op.f("pk_fills")),
    )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fills_order_id"), ["order_id"], unique=False)

    op.create_table(
        "latest_spreads",
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("instrument", sa.String(length=100), nullable=False),
        sa.Column("buy_venue", sa.String(length=100), nullable=False),
        sa.Column("sell_venue", sa.String(length=100), nullable=False),
        sa.Column("opportunity_id", sa.Uuid(), nullable=False),
        sa.Column("buy_price", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("sell_price", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("quantity", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("gross_edge_bps", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("net_edge_bps", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("event_time_ns", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "session_id", "instrument", "buy_venue", "sell_venue", name=op.f("pk_latest_spreads")
        ),
    )
    op.create_table(
        "order_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("log_offset", sa.BigInteger(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("event_time_ns", sa.BigInteger(), nullable=False),
        sa.Column("status_after", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_order_events")),
    )
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_events_order_id_event_time_ns"), ["order_id", "event_time_ns"], unique=False
        )

    op.create_table(
        "orders",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("strategy_id", sa.String(length=100), nullable=False),
        sa.Column("venue", sa.String(length=100), nullable=False),
        sa.Column("instrument", sa.String(length=100), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("order_type", sa.String(length=16), nullable=False),
        sa.Column("time_in_force", sa.String(length=8), nullable=False),
        sa.Column("quantity", projections.models.Money(precision=38, scale=18), nullable=True),
        sa.Column("limit_price", projections.models.Money(precision=38, scale=18), nullable=True),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("leg_group_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("venue_order_id", sa.String(length=200), nullable=True),
        sa.Column("filled_quantity", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("leaves_quantity", projections.models.Money(precision=38, scale=18), nullable=True),
        sa.Column("avg_fill_price", projections.models.Money(precision=38, scale=18), nullable=True),
        sa.Column("notional", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("fees", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("last_event_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orders_session_id_status"), ["session_id", "status"], unique=False
        )

    op.create_table(
        "positions",
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("venue", sa.String(length=100), nullable=False),
        sa.Column("asset", sa.String(length=50), nullable=False),
        sa.Column("quote", sa.String(length=20), nullable=False),
        sa.Column("instrument", sa.String(length=100), nullable=False),
        sa.Column("quantity", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("cost_basis", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("avg_cost", projections.models.Money(precision=38, scale=18), nullable=True),
        sa.Column("realized_pnl", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("fees", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("fill_count", sa.Integer(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "account", "venue", "asset", name=op.f("pk_positions")),
    )
    op.create_table(
        "projection_tracking",
        sa.Column("projection", sa.String(length=100), nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("last_offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("projection", "session_id", "stream", name=op.f("pk_projection_tracking")),
    )
    op.create_table(
        "risk_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("rule", sa.String(length=100), nullable=True),
        sa.Column("limit_value", projections.models.Money(precision=38, scale=18), nullable=True),
        sa.Column("actual_value", projections.models.Money(precision=38, scale=18), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("event_time_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_risk_events")),
    )
    with op.batch_alter_table("risk_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_risk_events_session_id_event_time_ns"),
            ["session_id", "event_time_ns"],
            unique=False,
        )

    op.create_table(
        "risk_state",
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("kill_switch_engaged", sa.Boolean(), nullable=False),
        sa.Column("kill_switch_reason", sa.Text(), nullable=False),
        sa.Column("kill_switch_changed_ns", sa.BigInteger(), nullable=True),
        sa.Column("checks_passed", sa.Integer(), nullable=False),
        sa.Column("rejections", sa.Integer(), nullable=False),
        sa.Column("last_rejection_order_id", sa.Uuid(), nullable=True),
        sa.Column("last_rejection_rule", sa.String(length=100), nullable=True),
        sa.Column("last_rejection_limit", projections.models.Money(precision=38, scale=18), nullable=True),
        sa.Column("last_rejection_actual", projections.models.Money(precision=38, scale=18), nullable=True),
        sa.Column("last_rejection_detail", sa.Text(), nullable=True),
        sa.Column("last_rejection_ns", sa.BigInteger(), nullable=True),
        sa.Column("breaches", sa.Integer(), nullable=False),
        sa.Column("last_breach_drawdown", projections.models.Money(precision=38, scale=18), nullable=True),
        sa.Column("last_breach_limit", projections.models.Money(precision=38, scale=18), nullable=True),
        sa.Column("last_breach_action", sa.String(length=20), nullable=True),
        sa.Column("last_breach_ns", sa.BigInteger(), nullable=True),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_risk_state")),
    )
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=True),
        sa.Column("config_hash", sa.String(length=128), nullable=True),
        sa.Column("model_hash", sa.String(length=128), nullable=True),
        sa.Column("code_version", sa.String(length=128), nullable=True),
        sa.Column("parameters", sa.Text(), nullable=True),
        sa.Column("started_ns", sa.BigInteger(), nullable=True),
        sa.Column("ended_ns", sa.BigInteger(), nullable=True),
        sa.Column("input_events", sa.BigInteger(), nullable=True),
        sa.Column("derived_events", sa.BigInteger(), nullable=True),
        sa.Column("digest", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_sessions")),
    )
    op.create_table(
        "signals",
        sa.Column("opportunity_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("strategy_id", sa.String(length=100), nullable=False),
        sa.Column("instrument", sa.String(length=100), nullable=False),
        sa.Column("buy_venue", sa.String(length=100), nullable=False),
        sa.Column("sell_venue", sa.String(length=100), nullable=False),
        sa.Column("buy_price", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("sell_price", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("quantity", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("gross_edge_bps", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("net_edge_bps", projections.models.Money(precision=38, scale=18), nullable=False),
        sa.Column("event_time_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("opportunity_id", name=op.f("pk_signals")),
    )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signals_session_id_event_time_ns"), ["session_id", "event_time_ns"], unique=False
        )

    op.create_table(
        "ts_points",
        sa.Column("measurement", sa.String(length=100), nullable=False),
        sa.Column("tags", sa.String(length=1000), nullable=False),
        sa.Column("time_ns", sa.BigInteger(), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("measurement", "tags", "time_ns", name=op.f("pk_ts_points")),
    )


def downgrade() -> None:
    op.drop_table("ts_points")
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signals_session_id_event_time_ns"))

    op.drop_table("signals")
    op.drop_table("sessions")
    op.drop_table("risk_state")
    with op.batch_alter_table("risk_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_events_session_id_event_time_ns"))

    op.drop_table("risk_events")
    op.drop_table("projection_tracking")
    op.drop_table("positions")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_session_id_status"))

    op.drop_table("orders")
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_events_order_id_event_time_ns"))

    op.drop_table("order_events")
    op.drop_table("latest_spreads")
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_order_id"))

    op.drop_table("fills")
    with op.batch_alter_table("equity_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_equity_samples_session_id_account_event_time_ns"))

    op.drop_table("equity_samples")
