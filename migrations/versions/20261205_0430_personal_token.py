"""Privacy: the token vault that keeps personal data out of Rasa's tracker store.

Revision ID: 0430
Revises: 0420
Create Date: 2026-12-05

Values stay tied to their conversation (deleted with it) and expire. Rasa's own
tracker store is another database: `python -m bot.privacy.tracker_scrub` masks
what it already holds (see the README). The SQL below is frozen here on purpose
(not imported from bot.privacy.models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0430"
down_revision = "0420"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the token vault."""
    op.create_table(
        "personal_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversation.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id", "token", name="uq_personal_token"),
    )
    op.create_index("ix_personal_token_expires", "personal_token", ["expires_at"])


def downgrade() -> None:
    """Drop the token vault."""
    op.drop_index("ix_personal_token_expires", table_name="personal_token")
    op.drop_table("personal_token")
