"""`python -m bench.pg_reads`: a read in a transaction ends in a rollback, one
through `bot.db.reading` in a commit of its own and no rollback."""

from __future__ import annotations

import pytest

from bench.pg_reads import measure
from tests.postgres import postgres_database


def _counts(row: str) -> tuple[float, float]:
    commits, rollbacks = row.strip("| ").rsplit("|", 1)[1].split("/")
    return float(commits), float(rollbacks)


def test_a_read_outside_a_transaction_is_counted_as_one_commit_and_no_rollback() -> (
    None
):
    with postgres_database("bench_pg_reads") as url:
        rows = measure(url, reads=40, rounds=1)
    in_transaction, outside = rows
    assert in_transaction.startswith("| in a transaction |")
    assert outside.startswith("| outside (bot.db.reading) |")
    # a stray transaction in the database (autovacuum) moves a count by 1/40
    assert _counts(in_transaction) == pytest.approx((0.0, 1.0), abs=0.1)
    assert _counts(outside) == pytest.approx((1.0, 0.0), abs=0.1)
