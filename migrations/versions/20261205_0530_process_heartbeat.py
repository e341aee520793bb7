"""Gateway: one heartbeat row per process, and fencing tokens on leases.

Revision ID: 0530
Revises: 0520
Create Date: 2026-12-05

A lease whose owner's heartbeat is stale is free (takeover in seconds after a
kill); `lease_token` is written by every claim and checked by every guarded
write (a paused process cannot commit after a takeover). NIK jobs use their
attempt number as token. The SQL below is frozen here on purpose (not imported
from bot.leases or bot.messages.models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0530"
down_revision = "0520"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `gateway_process`; add `lease_token` to conversations and outbox."""
    op.create_table(
        "gateway_process",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner"),
    )
    op.create_index(
        "ix_gateway_process_heartbeat_at", "gateway_process", ["heartbeat_at"]
    )
    for table in ("conversation", "outbox_message"):
        op.add_column(table, sa.Column("lease_token", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("lease_token")
    with op.batch_alter_table("conversation") as batch:
        batch.drop_column("lease_token")
    op.drop_index("ix_gateway_process_heartbeat_at", table_name="gateway_process")
    op.drop_table("gateway_process")
