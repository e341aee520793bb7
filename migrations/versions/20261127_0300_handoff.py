"""Handoff to agents: tickets, notes, and who wrote each outbox message.

Revision ID: 0300
Revises: 0200
Create Date: 2026-11-27

One active ticket (open or assigned) per conversation is a partial unique index,
so two triggers at once open one ticket. `outbox_message.author` ("bot",
"agent", "system") and `agent_id` let the console show every turn; existing
rows are the bot's. The SQL below is frozen here on purpose (not imported from
bot.handoff.models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0300"
down_revision = "0200"
branch_labels = None
depends_on = None

ONE_ACTIVE_TICKET = "status IN ('open', 'assigned')"


def upgrade() -> None:
    """Create the ticket tables and add the outbox author columns."""
    op.create_table(
        "ticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("applicant_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(), nullable=True),
        sa.Column("first_reply_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.Column("last_wait_told_minutes", sa.Integer(), nullable=True),
        sa.Column("last_told_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'assigned', 'resolved', 'cancelled')",
            name="ck_ticket_status",
        ),
        sa.CheckConstraint(
            "reason IN ('request_human', 'fallback', 'complaint', 'unfixable')",
            name="ck_ticket_reason",
        ),
        sa.CheckConstraint("channel IN ('telegram', 'sms')", name="ck_ticket_channel"),
        sa.CheckConstraint(
            "status <> 'open' OR agent_id IS NULL", name="ck_ticket_open_unassigned"
        ),
        sa.CheckConstraint(
            "status <> 'assigned'"
            " OR (agent_id IS NOT NULL AND assigned_at IS NOT NULL)",
            name="ck_ticket_assigned",
        ),
        sa.CheckConstraint(
            "(status = 'resolved') = (resolved_at IS NOT NULL)",
            name="ck_ticket_resolved",
        ),
        sa.CheckConstraint(
            "(status = 'cancelled') = (cancelled_at IS NOT NULL)",
            name="ck_ticket_cancelled",
        ),
        sa.CheckConstraint(
            "last_wait_told_minutes IS NULL OR last_wait_told_minutes >= 0",
            name="ck_ticket_wait_told",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversation.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["applicant_id"], ["applicant.id"], ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_ticket_one_active",
        "ticket",
        ["conversation_id"],
        unique=True,
        sqlite_where=sa.text(ONE_ACTIVE_TICKET),
        postgresql_where=sa.text(ONE_ACTIVE_TICKET),
    )
    op.create_index("ix_ticket_status_created", "ticket", ["status", "created_at"])
    op.create_index("ix_ticket_conversation", "ticket", ["conversation_id", "id"])

    op.create_table(
        "ticket_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("length(text) > 0", name="ck_ticket_note_text"),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_note_ticket", "ticket_note", ["ticket_id", "id"])

    op.add_column(
        "outbox_message",
        sa.Column("author", sa.String(length=16), nullable=False, server_default="bot"),
    )
    op.add_column("outbox_message", sa.Column("agent_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop the outbox author columns and the ticket tables."""
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("agent_id")
        batch.drop_column("author")
    op.drop_table("ticket_note")
    op.drop_table("ticket")
