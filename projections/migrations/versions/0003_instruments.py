"""instrument specifications (InstrumentDefined) per session

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import projections.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _money(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, projections.models.Money(precision=38, scale=18), nullable=False)


def upgrade() -> None:
    op.create_table(
        "instruments",
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("venue", sa.String(length=100), nullable=False),
        sa.Column("instrument", sa.String(length=100), nullable=False),
        sa.Column("base", sa.String(length=20), nullable=False),
        sa.Column("quote", sa.String(length=20), nullable=False),
        sa.Column("settlement", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        *(
            _money(name)
            for name in (
                "contract_size",
                "tick_size",
                "lot_size",
                "min_notional",
                "maker_fee_bps",
                "taker_fee_bps",
            )
        ),  # fmt: skip
        sa.Column("event_time_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "venue", "instrument", name=op.f("pk_instruments")),
    )


def downgrade() -> None:
    op.drop_table("instruments")
