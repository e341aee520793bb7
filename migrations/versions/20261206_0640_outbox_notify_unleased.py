"""Gateway: an outbox row inserted already leased wakes no process (PostgreSQL).

Revision ID: 0640
Revises: 0630
Create Date: 2026-12-06

A turn's first reply is inserted leased to the process that stored it, which
sends it at once (`bot.gateway.results`): waking every process's outbox to
find nothing to claim cost a claim query per reply. The outbox trigger of
revision 0550 becomes a row-level one that notifies only for rows inserted
without a lease; PostgreSQL still folds the notifications of one transaction
into one. The names are frozen here on purpose (as in 0550).
"""

from __future__ import annotations

from alembic import op

revision = "0640"
down_revision = "0630"
branch_labels = None
depends_on = None

FUNCTION = "prakerja_notify_work"
TABLE = "outbox_message"
TRIGGER = "outbox_message_notify_work"


def upgrade() -> None:
    """Notify for unleased outbox rows only (PostgreSQL)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {TABLE}")
    op.execute(
        f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON {TABLE} FOR EACH ROW "
        f"WHEN (NEW.lease_owner IS NULL) EXECUTE FUNCTION {FUNCTION}()"
    )


def downgrade() -> None:
    """Back to one notification per inserting statement."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {TABLE}")
    op.execute(
        f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON {TABLE} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
    )
