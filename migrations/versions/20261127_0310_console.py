"""Console: agents, their login sessions and the audit log.

Revision ID: 0310
Revises: 0300
Create Date: 2026-11-27

Only the SHA-256 of a session token is stored; passwords only as argon2id hashes;
the audit log names things by id, never personal data in clear. The SQL below is
frozen here on purpose (not imported from bot.console.models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0310"
down_revision = "0300"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the console tables."""
    op.create_table(
        "agent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("role IN ('agent', 'supervisor')", name="ck_agent_role"),
        sa.CheckConstraint("length(username) > 0", name="ck_agent_username"),
        sa.CheckConstraint("failed_logins >= 0", name="ck_agent_failed_logins"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username", name="uq_agent_username"),
    )
    op.create_table(
        "agent_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_agent_session_agent", "agent_session", ["agent_id"])
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(length=128), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])
    op.create_index(
        "ix_audit_event_action_target", "audit_event", ["action", "target", "at"]
    )
    op.create_index("ix_audit_event_agent", "audit_event", ["agent_id", "at"])


def downgrade() -> None:
    """Drop the console tables."""
    op.drop_index("ix_audit_event_agent", table_name="audit_event")
    op.drop_index("ix_audit_event_action_target", table_name="audit_event")
    op.drop_index("ix_audit_event_at", table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_index("ix_agent_session_agent", table_name="agent_session")
    op.drop_table("agent_session")
    op.drop_table("agent")
