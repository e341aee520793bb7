"""Registry: applicants, identities, consent, steps, batches, KK counts, jobs, codes.

Revision ID: 0100
Revises: 0001
Create Date: 2026-11-27

The rules that must hold under simultaneous requests are constraints: one applicant
per NIK, a batch never over its quota, one pending batch membership per applicant
(partial unique index), one active verification job per applicant and kind.
The SQL below is frozen here on purpose (not imported from bot.registry.models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0100"
down_revision = "0001"
branch_labels = None
depends_on = None

ONE_PENDING_MEMBERSHIP = "result = 'pending'"
ONE_ACTIVE_JOB = "status IN ('queued', 'running')"


def _partial(where: str) -> dict[str, sa.TextClause]:
    """A partial index's WHERE clause, for SQLite and PostgreSQL alike."""
    return {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}


def upgrade() -> None:
    """Create the registry tables."""
    op.create_table(
        "applicant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nik", sa.String(length=16), nullable=False),
        sa.Column("kk_number", sa.String(length=16), nullable=False),
        sa.Column("full_name", sa.String(length=128), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("email_verified_at", sa.DateTime(), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("policy_version", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("length(nik) = 16", name="ck_applicant_nik"),
        sa.CheckConstraint("length(kk_number) = 16", name="ck_applicant_kk_number"),
        sa.CheckConstraint("length(full_name) > 0", name="ck_applicant_full_name"),
        sa.CheckConstraint(
            "phone IS NULL OR phone LIKE '+%'", name="ck_applicant_phone_e164"
        ),
        sa.CheckConstraint(
            "email_verified_at IS NULL OR email IS NOT NULL",
            name="ck_applicant_email_verified",
        ),
        sa.CheckConstraint(
            "status IN ('registered', 'participant', 'revoked')",
            name="ck_applicant_status",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("nik", name="uq_applicant_nik"),
    )
    op.create_index("ix_applicant_kk_number", "applicant", ["kk_number"])
    op.create_index("ix_applicant_phone", "applicant", ["phone"])

    op.create_table(
        "channel_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("applicant_id", sa.Integer(), nullable=True),
        sa.Column("linked_at", sa.DateTime(), nullable=True),
        sa.Column("link_method", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "channel IN ('telegram', 'sms')", name="ck_channel_identity_channel"
        ),
        sa.CheckConstraint(
            "length(external_id) > 0", name="ck_channel_identity_external_id"
        ),
        sa.CheckConstraint(
            "(applicant_id IS NULL AND linked_at IS NULL AND link_method IS NULL)"
            " OR (applicant_id IS NOT NULL AND linked_at IS NOT NULL"
            " AND link_method IN ('registration', 'phone', 'email_code', 'sms_code'))",
            name="ck_channel_identity_link",
        ),
        sa.ForeignKeyConstraint(["applicant_id"], ["applicant.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "channel", "external_id", name="uq_channel_identity_external"
        ),
        sa.UniqueConstraint(
            "applicant_id", "channel", name="uq_channel_identity_applicant"
        ),
    )

    op.create_table(
        "consent_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("applicant_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("text_version", sa.String(length=32), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "identity_id IS NOT NULL OR applicant_id IS NOT NULL",
            name="ck_consent_record_subject",
        ),
        sa.CheckConstraint(
            "withdrawn_at IS NULL OR withdrawn_at >= granted_at",
            name="ck_consent_record_withdrawn",
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["channel_identity.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["applicant_id"], ["applicant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_consent_record_identity", "consent_record", ["identity_id", "purpose"]
    )
    op.create_index(
        "ix_consent_record_applicant", "consent_record", ["applicant_id", "purpose"]
    )

    op.create_table(
        "registration_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("applicant_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.String(length=32), nullable=True),
        sa.Column("failure_detail", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "step IN ('email', 'nik', 'photo', 'test', 'batch', 'selection')",
            name="ck_registration_step_step",
        ),
        sa.CheckConstraint(
            "status IN ('not_started', 'pending', 'done', 'failed')",
            name="ck_registration_step_status",
        ),
        sa.CheckConstraint(
            "(status = 'failed' AND failure_reason IS NOT NULL)"
            " OR (status <> 'failed' AND failure_reason IS NULL"
            " AND failure_detail IS NULL)",
            name="ck_registration_step_failure",
        ),
        sa.CheckConstraint(
            "(status = 'done' AND completed_at IS NOT NULL)"
            " OR (status <> 'done' AND completed_at IS NULL)",
            name="ck_registration_step_completed",
        ),
        sa.ForeignKeyConstraint(["applicant_id"], ["applicant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("applicant_id", "step", name="uq_registration_step"),
    )

    op.create_table(
        "batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("opens_at", sa.DateTime(), nullable=False),
        sa.Column("closes_at", sa.DateTime(), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=False),
        sa.Column("joined_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("number > 0", name="ck_batch_number_positive"),
        sa.CheckConstraint("quota > 0", name="ck_batch_quota_positive"),
        sa.CheckConstraint("joined_count >= 0", name="ck_batch_joined_nonnegative"),
        sa.CheckConstraint("joined_count <= quota", name="ck_batch_joined_le_quota"),
        sa.CheckConstraint("closes_at > opens_at", name="ck_batch_window"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number", name="uq_batch_number"),
    )

    op.create_table(
        "batch_membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("applicant_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "result IN ('pending', 'selected', 'not_selected')",
            name="ck_batch_membership_result",
        ),
        sa.CheckConstraint(
            "(result = 'pending' AND decided_at IS NULL)"
            " OR (result <> 'pending' AND decided_at IS NOT NULL)",
            name="ck_batch_membership_decided",
        ),
        sa.ForeignKeyConstraint(["applicant_id"], ["applicant.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["batch_id"], ["batch.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("applicant_id", "batch_id", name="uq_batch_membership"),
    )
    op.create_index(
        "uq_batch_membership_one_pending",
        "batch_membership",
        ["applicant_id"],
        unique=True,
        **_partial(ONE_PENDING_MEMBERSHIP),
    )
    op.create_index(
        "ix_batch_membership_batch", "batch_membership", ["batch_id", "result"]
    )

    op.create_table(
        "kk_count",
        sa.Column("kk_number", sa.String(length=16), nullable=False),
        sa.Column("registered_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("registered_count >= 0", name="ck_kk_count_nonnegative"),
        sa.CheckConstraint("length(kk_number) = 16", name="ck_kk_count_kk"),
        sa.PrimaryKeyConstraint("kk_number"),
    )

    op.create_table(
        "verification_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("applicant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("result_code", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('nik', 'email')", name="ck_verification_job_kind"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')",
            name="ck_verification_job_status",
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_verification_job_attempts"),
        sa.CheckConstraint(
            "status <> 'running'"
            " OR (lease_owner IS NOT NULL AND lease_until IS NOT NULL)",
            name="ck_verification_job_lease",
        ),
        sa.ForeignKeyConstraint(["applicant_id"], ["applicant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_verification_job_active",
        "verification_job",
        ["applicant_id", "kind"],
        unique=True,
        **_partial(ONE_ACTIVE_JOB),
    )
    op.create_index(
        "ix_verification_job_due", "verification_job", ["status", "next_attempt_at"]
    )

    op.create_table(
        "email_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("applicant_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "identity_id IS NOT NULL OR applicant_id IS NOT NULL",
            name="ck_email_code_owner",
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_email_code_attempts"),
        sa.CheckConstraint("expires_at > created_at", name="ck_email_code_expiry"),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["channel_identity.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["applicant_id"], ["applicant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_email_code_identity", "email_code", ["identity_id", "id"])
    op.create_index("ix_email_code_applicant", "email_code", ["applicant_id", "id"])


def downgrade() -> None:
    """Drop the registry tables (children first)."""
    for table in (
        "email_code",
        "verification_job",
        "kk_count",
        "batch_membership",
        "batch",
        "registration_step",
        "consent_record",
        "channel_identity",
        "applicant",
    ):
        op.drop_table(table)
