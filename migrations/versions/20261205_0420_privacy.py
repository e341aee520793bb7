"""Privacy: the erasure audit, the purge queue, erased participants; erased tickets.

Revision ID: 0420
Revises: 0410
Create Date: 2026-12-05

`erasure_record` audits each erasure without personal data; `privacy_purge`
holds the conversations whose transcript and Rasa tracker events are purged a
moment after the erasure; `lifetime_participant` keeps only a keyed hash of an
erased participant's NIK; `ticket.erased_at` makes the console show "data
dihapus". The SQL below is frozen here on purpose (not imported from the models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0420"
down_revision = "0410"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create the privacy tables and add `ticket.erased_at`."""
    op.create_table(
        "erasure_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("applicant_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
        sa.Column("purged_at", sa.DateTime(), nullable=True),
        sa.Column("removed", JSON, nullable=False),
        sa.CheckConstraint(
            "reason IN ('request', 'retention')", name="ck_erasure_record_reason"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_erasure_record_at", "erasure_record", ["erased_at"])
    op.create_index("ix_erasure_record_applicant", "erasure_record", ["applicant_id"])
    op.create_table(
        "privacy_purge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("erasure_id", sa.Integer(), nullable=True),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("not_before", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_privacy_purge_due", "privacy_purge", ["not_before"])
    op.create_table(
        "lifetime_participant",
        sa.Column("nik_hash", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "length(nik_hash) = 64", name="ck_lifetime_participant_hash"
        ),
        sa.PrimaryKeyConstraint("nik_hash"),
    )
    op.add_column("ticket", sa.Column("erased_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    """Drop the privacy tables and `ticket.erased_at`."""
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("erased_at")
    op.drop_table("lifetime_participant")
    op.drop_index("ix_privacy_purge_due", table_name="privacy_purge")
    op.drop_table("privacy_purge")
    op.drop_index("ix_erasure_record_applicant", table_name="erasure_record")
    op.drop_index("ix_erasure_record_at", table_name="erasure_record")
    op.drop_table("erasure_record")
