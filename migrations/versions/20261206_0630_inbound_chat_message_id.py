"""Inbox: Telegram's id of the person's message in the chat.

Revision ID: 0630
Revises: 0620
Create Date: 2026-12-06

`inbox_message.chat_message_id` keeps the id Telegram gave the person's message
(a button press: the id of the button's message). Message ids count up in a
private chat for both sides, so a reply sent after that message got a higher id:
a Telegram send whose outcome is unknown is looked up among the ids after it,
also for the first reply of a chat (`bot.gateway.chat_anchor`). A plain
nullable column (no table rebuild on SQLite, no lock on PostgreSQL beyond the
catalogue change); rows stored before it, SMS and internal events keep NULL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0630"
down_revision = "0620"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column."""
    op.add_column(
        "inbox_message", sa.Column("chat_message_id", sa.BigInteger(), nullable=True)
    )


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("inbox_message") as batch:
        batch.drop_column("chat_message_id")
