"""Gateway: what each conversation was last told about a long wait.

Revision ID: 0540
Revises: 0530
Create Date: 2026-12-05

`wait_notice_upto` and `overflow_notice_upto` hold the last inbox id that the
latest wait notice (or notice that extra messages are not read) covered, so a
person gets one of each per backlog episode, whichever gateway process sends it.
Skipped messages use a new value of `inbox_message.status` ("skipped"): no
schema change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0540"
down_revision = "0530"
branch_labels = None
depends_on = None

COLUMNS = ("wait_notice_upto", "overflow_notice_upto")


def upgrade() -> None:
    """Add the two columns to `conversation`."""
    for column in COLUMNS:
        op.add_column("conversation", sa.Column(column, sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("conversation") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
