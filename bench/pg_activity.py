"""What PostgreSQL did for one database in a phase: transactions, rows read, and
per table the sequential scans and the index entries read, from its statistics
views.

`pg_stat_database` and `pg_stat_user_tables` count since the database was made;
a snapshot before and after a phase gives the phase's own. A backend reports its
counts when a transaction ends, at most once a second; counts it could not
report then wait until it has been idle for ten seconds (PostgreSQL 15's
`PGSTAT_IDLE_INTERVAL`), so each snapshot is taken `SETTLE_SECONDS` after the
services went quiet. Read from a connection to the database itself (the table
view lists only the current database's tables); the read before a phase is
counted in it, the one after is not.
"""

from __future__ import annotations

from typing import Any

SETTLE_SECONDS = 11.0
"""Idle time after which every backend has reported its counts."""
DATABASE_COUNTS = ("xact_commit", "xact_rollback", "tup_returned", "tup_fetched")
TABLE_COUNTS = ("seq_scan", "seq_tup_read", "idx_scan", "idx_tup_read")
DATABASE_SQL = (
    "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched"
    " FROM pg_stat_database WHERE datname = current_database()"
)
TABLES_SQL = (
    "SELECT t.relname, t.seq_scan, t.seq_tup_read, t.idx_scan,"
    " (SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i"
    "  WHERE i.relid = t.relid)"
    " FROM pg_stat_user_tables t"
)
"""Per table; the index entries read are counted per index (index-only scans
included), summed here."""


def snapshot(database_url: str) -> dict[str, Any]:
    """The database's counts now, and each table's."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(database_url, future=True, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            row = connection.execute(text(DATABASE_SQL)).one()
            tables = {
                str(name): _counts(TABLE_COUNTS, rest)
                for name, *rest in connection.execute(text(TABLES_SQL))
            }
    finally:
        engine.dispose()
    return {"database": _counts(DATABASE_COUNTS, row), "tables": tables}


def _counts(names: tuple[str, ...], values: Any) -> dict[str, int]:
    return dict(zip(names, (int(v or 0) for v in values), strict=True))


def per_message(
    before: dict[str, Any],
    after: dict[str, Any],
    messages: int,
    top: int = 5,
    harness_reads: int = 0,
) -> dict[str, Any]:
    """The phase's counts per message, the tables read by sequential scans
    (most rows read first, at most `top`): scans and rows read in the phase,
    and the tables read through their indexes (most index entries read first:
    an index that serves a lookup badly reads many entries for each).
    A rollback is mostly a read-only transaction ended by the connection pool
    (SQLAlchemy's reset on return), still a round trip. `harness_reads`: the
    load generator's own read-only transactions, taken off the rollbacks (the
    rows they read stay in `rows_read`)."""
    n = max(messages, 1)

    def grew(now: dict[str, int], then: dict[str, int], key: str) -> int:
        return now.get(key, 0) - then.get(key, 0)

    db_now, db_then = after["database"], before["database"]
    scanned, indexed = [], []
    for table, counts in after["tables"].items():
        then = before["tables"].get(table, {})
        scans = grew(counts, then, "seq_scan")
        if scans:
            scanned.append((grew(counts, then, "seq_tup_read"), scans, table))
        lookups = grew(counts, then, "idx_scan")
        if lookups:
            indexed.append((grew(counts, then, "idx_tup_read"), lookups, table))
    scanned.sort(reverse=True)
    indexed.sort(reverse=True)
    return {
        "commits": round(grew(db_now, db_then, "xact_commit") / n, 2),
        "rollbacks": round(
            (grew(db_now, db_then, "xact_rollback") - harness_reads) / n, 2
        ),
        "rows_read": round(
            (
                grew(db_now, db_then, "tup_returned")
                + grew(db_now, db_then, "tup_fetched")
            )
            / n,
            1,
        ),
        "sequential_scans": [
            {"table": table, "scans": scans, "rows_read": rows}
            for rows, scans, table in scanned[:top]
        ],
        "index_reads": [
            {"table": table, "scans": scans, "entries_read": entries}
            for entries, scans, table in indexed[:top]
        ],
    }
