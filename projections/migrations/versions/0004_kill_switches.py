"""kill switches per account (scope and still_engaged of the kill-switch events)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_kill_switches",
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("global_engaged", sa.Boolean(), nullable=False),
        sa.Column("account_engaged", sa.Boolean(), nullable=False),
        sa.Column("engaged", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "account", name=op.f("pk_risk_kill_switches")),
    )
    with op.batch_alter_table("risk_state") as batch:
        batch.add_column(sa.Column("kill_switch_accounts", sa.Text(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("risk_state") as batch:
        batch.drop_column("kill_switch_accounts")
    op.drop_table("risk_kill_switches")
