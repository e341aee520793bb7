"""`python -m bench.pg_statements`: a statement log grouped into transactions
by backend, each named by its statements, prepared ones by their SQL."""

from __future__ import annotations

from bench.pg_statements import count


def _logged(pid: int, text: str, database: str = "bench", level: str = "LOG") -> str:
    prefix = f"2026-12-07 23:33:42.826 UTC [{pid}] postgres@{database} {level}:  "
    return prefix + (f"statement: {text}" if level == "LOG" else text) + "\n"


LOG = [
    _logged(11, "BEGIN"),
    _logged(12, "BEGIN"),
    _logged(11, "PREPARE direct_sql_1 AS SELECT max(events.id)"),
    "\tFROM events WHERE sender_id = $1\n",
    _logged(11, "EXECUTE direct_sql_1('a')"),
    _logged(12, "INSERT INTO effect VALUES (1)"),
    _logged(11, "ROLLBACK"),
    _logged(13, "BEGIN", database="other"),
    _logged(13, "ROLLBACK", database="other"),
    _logged(12, "COMMIT"),
    _logged(11, "BEGIN"),
    _logged(11, "EXECUTE direct_sql_1('b')"),
    _logged(11, "ROLLBACK"),
    _logged(11, "SELECT 1"),
    _logged(14, "BEGIN"),
    _logged(14, "SAVEPOINT sa_savepoint_1"),
    _logged(14, "INSERT INTO agent VALUES (1)"),
    _logged(14, "ROLLBACK TO SAVEPOINT sa_savepoint_1"),
    _logged(14, "UPDATE agent SET x = 1"),
    _logged(14, "COMMIT"),
    _logged(11, "division by zero", level="ERROR"),
    _logged(11, "SELECT 1 / 0", level="STATEMENT"),
]


def test_transactions_are_counted_by_their_statements_per_backend() -> None:
    counted = count(LOG, "bench")
    read = "(1) [prepared] SELECT max(events.id) FROM events WHERE sender_id = $1"
    assert dict(counted.ended) == {
        ("ROLLBACK", read): 2,
        ("COMMIT", "(1) INSERT INTO effect VALUES (1)"): 1,
        ("COMMIT", "(2) INSERT INTO agent VALUES (1) || UPDATE agent SET x = 1"): 1,
    }
    assert dict(counted.alone) == {"SELECT 1": 1}
