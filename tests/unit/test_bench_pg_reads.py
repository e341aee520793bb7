"""`python -m bench.pg_reads`: a read in a transaction ends in a rollback, one
through `bot.db.reading` in a commit of its own and no rollback."""

from __future__ import annotations

from bench.pg_reads import measure
from tests.postgres import postgres_database


def test_a_read_outside_a_transaction_is_counted_as_one_commit_and_no_rollback() -> (
    None
):
    with postgres_database("bench_pg_reads") as url:
        rows = measure(url, reads=20, rounds=1)
    in_transaction, outside = rows
    assert in_transaction.startswith("| in a transaction |")
    assert in_transaction.endswith("| 0.00 / 1.00 |")
    assert outside.startswith("| outside (bot.db.reading) |")
    assert outside.endswith("| 1.00 / 0.00 |")
