"""Console: failed-login counters shared by every gateway process, and an
index for the audit log's ticket filter.

Revision ID: 0410
Revises: 0310
Create Date: 2026-12-05

Replaces the per-account hard lock (`agent.failed_logins`, `agent.locked_until`,
left in place but unused: dropping them would rebuild `agent` on SQLite) and the
per-address count of `login_failed` audit rows. The SQL below is frozen here on
purpose (not imported from bot.console.models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0410"
down_revision = "0310"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `login_throttle`; index audit events by ticket."""
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=False),
        sa.Column("blocked_until", sa.DateTime(), nullable=True),
        sa.CheckConstraint("failures >= 0", name="ck_login_throttle_failures"),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(
        "ix_login_throttle_last_failure", "login_throttle", ["last_failure_at"]
    )
    op.create_index(
        "ix_login_throttle_agent", "login_throttle", ["agent_id", "last_failure_at"]
    )
    op.create_index("ix_audit_event_ticket", "audit_event", ["ticket_id", "at"])


def downgrade() -> None:
    """Drop `login_throttle` and the ticket index."""
    op.drop_index("ix_audit_event_ticket", table_name="audit_event")
    op.drop_index("ix_login_throttle_agent", table_name="login_throttle")
    op.drop_index("ix_login_throttle_last_failure", table_name="login_throttle")
    op.drop_table("login_throttle")
