"""Rasa's SQL tracker store, from outside Rasa: delete a sender's events.

Rasa keeps every event in the table `events` keyed by `sender_id` (the
gateway's pseudonym) with a float UNIX `timestamp`. `TRACKER_STORE_URL` points
here at the same database as `endpoints.yml`. A store that has no `events`
table yet (Rasa never ran) holds nothing to delete.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy import column, delete, inspect, table
from sqlalchemy.engine import Engine

EVENTS_TABLE = "events"
events = table(EVENTS_TABLE, column("sender_id"), column("timestamp"))


def _has_events(engine: Engine) -> bool:
    return bool(inspect(engine).has_table(EVENTS_TABLE))


def delete_tracker_events(engine: Engine, senders: Sequence[str]) -> int:
    """Delete every event of these senders; how many rows."""
    if not senders or not _has_events(engine):
        return 0
    total = 0
    with engine.begin() as connection:
        for sender in senders:
            result = connection.execute(
                delete(events).where(events.c.sender_id == sender)
            )
            total += int(result.rowcount or 0)
    return total


def delete_tracker_events_before(engine: Engine, cutoff: datetime) -> int:
    """Delete every event older than `cutoff` (naive UTC); how many rows."""
    if not _has_events(engine):
        return 0
    stamp = cutoff.replace(tzinfo=timezone.utc).timestamp()
    with engine.begin() as connection:
        result = connection.execute(delete(events).where(events.c.timestamp < stamp))
    return int(result.rowcount or 0)
