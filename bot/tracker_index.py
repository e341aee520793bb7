"""The index Rasa's `events` table needs beyond Rasa's own: (sender_id, id).

Rasa's table has an index on `sender_id` and its primary key. For "the newest
event of this conversation" and "its session, in id order", PostgreSQL weighs
reading the primary key backwards, filtered by sender, against the sender's
rows, and on some statistics picks the first: a person's first message then
reads the whole table (docs/benchmarks.md, "A database with a past"). With both
columns in one index the sender's newest event is its last entry, whatever the
statistics.

Made by the migration Job (`bot.seed`, where the tracker store is PostgreSQL and
its table exists), by Rasa with the table for a new database
(`bot.rasa_tracker_store.SENDER_EVENTS`), and, if still missing, by the tracker
store when it starts. No Rasa import here: the seed runs without it.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

log = logging.getLogger(__name__)

SENDER_EVENTS_INDEX = "ix_events_sender_id_id"
EVENTS_TABLE = "events"


def _has_index(engine: sa.engine.Engine) -> bool:
    found = sa.inspect(engine).get_indexes(EVENTS_TABLE)
    return SENDER_EVENTS_INDEX in {index["name"] for index in found}


def ensure_sender_events_index(engine: sa.engine.Engine) -> bool:
    """Make the index if the table exists without it; on PostgreSQL without
    blocking other servers' writes (`CONCURRENTLY`), tolerant of another
    process making it meanwhile. True when it was made here."""
    if not sa.inspect(engine).has_table(EVENTS_TABLE) or _has_index(engine):
        return False
    concurrently = " CONCURRENTLY" if engine.dialect.name == "postgresql" else ""
    statement = sa.text(
        f"CREATE INDEX{concurrently} IF NOT EXISTS {SENDER_EVENTS_INDEX}"
        f" ON {EVENTS_TABLE} (sender_id, id)"
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        try:
            conn.execute(statement)
        except sa.exc.DBAPIError:
            if not _has_index(engine):
                raise
            return False
    log.info("tracker store: index %s made", SENDER_EVENTS_INDEX)
    return True
