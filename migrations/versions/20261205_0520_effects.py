"""Exactly-once effects: the effect ledger and the durable mail queue.

Revision ID: 0520
Revises: 0510
Create Date: 2026-12-05

`effect` records what each side effect of a turn gave, keyed by the turn's
idempotency key (the inbox id) and the effect's name, in the effect's own
transaction; `mail_queue` holds the e-mails decided in such a transaction until
they are handed over. The SQL below is frozen here on purpose.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0520"
down_revision = "0510"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the effect ledger and the mail queue."""
    op.create_table(
        "effect",
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", "name"),
    )
    op.create_index("ix_effect_created", "effect", ["created_at"])
    op.create_table(
        "mail_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'failed')", name="ck_mail_queue_status"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mail_queue_due", "mail_queue", ["status", "claimed_until"])


def downgrade() -> None:
    """Drop the mail queue and the effect ledger."""
    op.drop_index("ix_mail_queue_due", table_name="mail_queue")
    op.drop_table("mail_queue")
    op.drop_index("ix_effect_created", table_name="effect")
    op.drop_table("effect")
