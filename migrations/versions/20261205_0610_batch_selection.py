"""Registry: batch runs, the selection's columns, announcement messages, notices.

Revision ID: 0610
Revises: 0550
Create Date: 2026-12-05

`batch_run` holds a batch's lifecycle after opening (places, state, the draw's
seed and figures); `batch_membership` gains why the re-check
left a member out, and the purchase deadline of the selected;
`announcement_message` is one result message per member and channel, and
`due_notice` the reminders owed before the purchase deadline (see
`bot.selection`). The membership columns are plain nullable columns (no table
rebuild on SQLite, no lock on PostgreSQL beyond the catalogue change).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0610"
down_revision = "0550"
branch_labels = None
depends_on = None

MEMBERSHIP_COLUMNS = (
    sa.Column("excluded_reason", sa.String(length=32), nullable=True),
    sa.Column("purchase_deadline", sa.DateTime(), nullable=True),
)
# Frozen copies of the value sets in bot.selection.models.
RUN_STATES = "'open', 'closed', 'selecting', 'selected', 'published'"
MESSAGE_STATUSES = "'pending', 'queued', 'sent', 'delivered', 'failed', 'skipped'"


def upgrade() -> None:
    """Create the three tables and add the membership columns."""
    for column in MEMBERSHIP_COLUMNS:
        op.add_column("batch_membership", column.copy())
    op.create_table(
        "batch_run",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("places", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("seed", sa.String(length=64), nullable=True),
        sa.Column("selection_started_at", sa.DateTime(), nullable=True),
        sa.Column("selected_at", sa.DateTime(), nullable=True),
        sa.Column("eligible_count", sa.Integer(), nullable=True),
        sa.Column("selected_count", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(f"state IN ({RUN_STATES})", name="ck_batch_run_state"),
        sa.CheckConstraint("places > 0", name="ck_batch_run_places"),
        sa.CheckConstraint(
            "state = 'open' OR closed_at IS NOT NULL", name="ck_batch_run_closed"
        ),
        sa.CheckConstraint(
            "state IN ('open', 'closed')"
            " OR (seed IS NOT NULL AND selection_started_at IS NOT NULL)",
            name="ck_batch_run_seed",
        ),
        sa.CheckConstraint(
            "state IN ('selected', 'published') = (selected_at IS NOT NULL"
            " AND selected_count IS NOT NULL AND eligible_count IS NOT NULL)",
            name="ck_batch_run_drawn",
        ),
        sa.CheckConstraint(
            "selected_count IS NULL OR selected_count <= places",
            name="ck_batch_run_selected_le_places",
        ),
        sa.CheckConstraint(
            "(state = 'published') = (published_at IS NOT NULL)",
            name="ck_batch_run_published",
        ),
        sa.ForeignKeyConstraint(["batch_id"], ["batch.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    op.create_table(
        "announcement_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("applicant_id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("text_key", sa.String(length=32), nullable=False),
        sa.Column("policy_version", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            f"status IN ({MESSAGE_STATUSES})", name="ck_announcement_message_status"
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_announcement_message_attempts"),
        sa.ForeignKeyConstraint(["batch_id"], ["batch.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["membership_id"], ["batch_membership.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["applicant_id"], ["applicant.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["channel_identity.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "membership_id", "identity_id", name="uq_announcement_message_member"
        ),
    )
    op.create_index(
        "ix_announcement_message_page",
        "announcement_message",
        ["batch_id", "status", "id"],
    )
    op.create_table(
        "due_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("applicant_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("days_before", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('purchase_reminder')", name="ck_due_notice_kind"),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'cancelled')", name="ck_due_notice_status"
        ),
        sa.CheckConstraint(
            "(status = 'pending') = (done_at IS NULL)", name="ck_due_notice_done"
        ),
        sa.ForeignKeyConstraint(["applicant_id"], ["applicant.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["membership_id"], ["batch_membership.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_due_notice_key"),
    )
    op.create_index("ix_due_notice_due", "due_notice", ["status", "due_at"])
    op.create_index("ix_due_notice_applicant", "due_notice", ["applicant_id"])


def downgrade() -> None:
    """Drop the tables and the membership columns."""
    op.drop_table("due_notice")
    op.drop_table("announcement_message")
    op.drop_table("batch_run")
    # Plain ALTER TABLE (SQLite >= 3.35 too): no rebuild, the partial index stays.
    for column in reversed(MEMBERSHIP_COLUMNS):
        op.execute(f"ALTER TABLE batch_membership DROP COLUMN {column.name}")
