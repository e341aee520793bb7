"""Announcement sender: bulk rows in the outbox, pausing, the sender's indexes.

Revision ID: 0620
Revises: 0610
Create Date: 2026-12-06

`outbox_message.priority` (0: a live reply, 1: bulk such as an announcement or
a reminder) lets the outbox claim live rows first; `batch_run.announce_paused_at`
pauses a batch's announcement (NULL: running). Two indexes serve the sender
(`bot.selection.delivery`): its page of pending rows per batch and channel, and
the announcement row of an outbox row (delivery statuses flow back by it).
Plain nullable or defaulted columns: no table rebuild on SQLite, no rewrite on
PostgreSQL (a constant default).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0620"
down_revision = "0610"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns and the indexes."""
    op.add_column(
        "outbox_message",
        sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0"),
    )
    op.add_column(
        "batch_run", sa.Column("announce_paused_at", sa.DateTime(), nullable=True)
    )
    op.create_index(
        "ix_announcement_message_lane",
        "announcement_message",
        ["batch_id", "channel", "status", "id"],
    )
    op.create_index(
        "ix_announcement_message_outbox", "announcement_message", ["outbox_id"]
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_announcement_message_outbox", "announcement_message")
    op.drop_index("ix_announcement_message_lane", "announcement_message")
    op.execute("ALTER TABLE batch_run DROP COLUMN announce_paused_at")
    op.execute("ALTER TABLE outbox_message DROP COLUMN priority")
