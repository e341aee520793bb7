"""Mail queue: which process claimed a mail.

Revision ID: 0650
Revises: 0640
Create Date: 2026-12-06

`mail_queue.claimed_by` names the process sending a mail (the action server's
or a gateway's lease owner, `bot.leases`). A mail whose sender's heartbeat went
stale is taken over within seconds (the sender was killed), not when its
claim's 60 s backstop runs out. A plain nullable column; claims made before it
keep NULL and the backstop rule.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0650"
down_revision = "0640"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column."""
    op.add_column("mail_queue", sa.Column("claimed_by", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("mail_queue") as batch:
        batch.drop_column("claimed_by")
