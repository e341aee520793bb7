"""Gateway: NOTIFY the gateway processes when work is inserted (PostgreSQL).

Revision ID: 0550
Revises: 0540
Create Date: 2026-12-05

A statement-level trigger on `inbox_message`, `outbox_message` and
`verification_job` runs `pg_notify('prakerja_work', <table name>)` inside the
inserting transaction, whoever inserts (a gateway process, the action server,
the console, a tool): PostgreSQL delivers it at commit, never for a rollback,
and folds repeats within one transaction into one. Every gateway process
listens (`bot.gateway.wakeups`) and wakes the loop that claims that table's
rows. SQLite has one process and wakes its loops in-process: nothing to do
there. The names are frozen here on purpose (not imported from bot.gateway).
"""

from __future__ import annotations

from alembic import op

revision = "0550"
down_revision = "0540"
branch_labels = None
depends_on = None

CHANNEL = "prakerja_work"
FUNCTION = "prakerja_notify_work"
TABLES = ("inbox_message", "outbox_message", "verification_job")


def _trigger(table: str) -> str:
    return f"{table}_notify_work"


def upgrade() -> None:
    """Create the notifying function and one trigger per table (PostgreSQL)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {_trigger(table)} AFTER INSERT ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )


def downgrade() -> None:
    """Drop the triggers and the function."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {_trigger(table)} ON {table}")
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
