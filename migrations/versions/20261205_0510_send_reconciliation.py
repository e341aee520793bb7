"""Outbox: evidence of sends in progress, their reconciliation, early statuses.

Revision ID: 0510
Revises: 0430
Create Date: 2026-12-05

`outbox_message.send_started_at` is committed before a provider is called, so a
crash leaves evidence that the outcome is unknown; `reconciled` says how such a
case ended (found, resent, given_up). `early_delivery_status` keeps delivery
status callbacks that arrive before their message's provider id is stored, for
whichever gateway process stores it. The SQL below is frozen here on purpose (not
imported from bot.messages.models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0510"
down_revision = "0430"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the send evidence columns and the early status table."""
    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(sa.Column("send_started_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("reconciled", sa.String(length=16), nullable=True))
    op.create_table(
        "early_delivery_status",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_message_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_early_delivery_status_message",
        "early_delivery_status",
        ["provider_message_id"],
    )
    op.create_index(
        "ix_early_delivery_status_received", "early_delivery_status", ["received_at"]
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_index(
        "ix_early_delivery_status_received", table_name="early_delivery_status"
    )
    op.drop_index(
        "ix_early_delivery_status_message", table_name="early_delivery_status"
    )
    op.drop_table("early_delivery_status")
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("reconciled")
        batch.drop_column("send_started_at")
