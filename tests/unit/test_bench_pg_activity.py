"""The end-to-end bench's database counts: PostgreSQL's statistics per message,
and the load generator's watcher reading conversations by their index."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.e2e.drive import TurnWatch, _turns_query
from bench.e2e.report import markdown
from bench.pg_activity import per_message, snapshot
from bot.channels.base import SMS, InboundMessage
from bot.db import make_engine, make_sessionmaker
from bot.messages.inbox import store_inbound
from bot.schema import upgrade
from tests.postgres import postgres_database


def _counts(commits: int, read: int, tables: dict[str, tuple[int, int]]) -> dict:
    return {
        "database": {"xact_commit": commits, "xact_rollback": 0,
                     "tup_returned": read, "tup_fetched": 0},
        "tables": {name: {"seq_scan": scans, "seq_tup_read": rows, "idx_scan": 0}
                   for name, (scans, rows) in tables.items()},
    }  # fmt: skip


def test_the_phase_counts_per_message_and_the_tables_read_whole_most_first() -> None:
    before = _counts(100, 1_000, {"batch": (5, 15), "personal_token": (1, 0)})
    after = _counts(
        150,
        21_000,
        {"batch": (25, 75), "personal_token": (41, 18_000), "applicant": (0, 0)},
    )
    before["database"]["xact_rollback"], after["database"]["xact_rollback"] = 7, 57
    found = per_message(before, after, messages=10, harness_reads=20)
    assert (found["commits"], found["rollbacks"]) == (5.0, 3.0)  # 20 were the load's
    assert found["rows_read"] == 2_000.0
    assert found["sequential_scans"] == [
        {"table": "personal_token", "scans": 40, "rows_read": 18_000},
        {"table": "batch", "scans": 20, "rows_read": 60},
    ]  # applicant was not scanned in the phase: left out


def test_the_report_lists_the_counts_of_each_phase() -> None:
    phase = {
        "messages": 10, "window_s": 1.0, "messages_per_s": 10.0, "p50_ms": 1.0,
        "p95_ms": 2.0, "p99_ms": 3.0, "timeouts": 0, "errors": 0,
        "cpu_ms_per_message": {}, "rasa_ms_per_message": {},
        "database_activity": {
            "commits": 5.2, "rollbacks": 3.5, "rows_read": 1234.5,
            "sequential_scans": [{"table": "batch", "scans": 2249, "rows_read": 6747}],
        },
    }  # fmt: skip
    report: dict[str, Any] = {
        "machine": {"nproc": 2, "cpu_model": "cpu", "python": "3.10",
                    "load_average_at_start": [1.0], "load_average_at_end": [1.0]},
        "command": "python -m bench.e2e", "date": "today",
        "runs": [{"database": "PostgreSQL 15", "people": 50, "ready_s": 5.0,
                  "whole_path": phase}],
    }  # fmt: skip
    text_ = markdown(report)
    assert "| 5.2 / 3.5 | 1,234.5 | batch 2,249 (6,747 rows) | – |" in text_
    phase["database_activity"]["index_reads"] = [  # type: ignore[index]
        {"table": "inbox_message", "scans": 40, "entries_read": 90_000}
    ]
    again = markdown({**report, "runs": [{**report["runs"][0], "whole_path": phase}]})
    assert "| batch 2,249 (6,747 rows) | inbox_message 40 (90,000 entries) |" in again


def _table_t(engine: Any, rows: int, v: str, index_v: bool = False) -> None:
    """Table `t` (id, v) of `rows` rows, `v` an expression of g = id; with an
    analyzed index on v if asked; its counts reported."""
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id int primary key, v int)"))
        connection.execute(
            text(f"INSERT INTO t SELECT g, {v} FROM generate_series(1, {rows}) g")
        )
        if index_v:
            connection.execute(text("CREATE INDEX t_v ON t (v)"))
            connection.execute(text("ANALYZE t"))
        connection.execute(text("SELECT pg_stat_force_next_flush()"))


def test_a_snapshot_counts_the_sequential_scans_of_the_phase() -> None:
    """Each transaction asks its backend to report its counts as it ends (else
    it reports them within a second, as the bench's idle services do)."""
    with postgres_database("bench_activity") as url:
        engine = create_engine(url, future=True)
        _table_t(engine, rows=100, v="g")
        before = snapshot(url)
        with engine.begin() as connection:
            for _ in range(3):
                connection.execute(text("SELECT count(*) FROM t WHERE v > 0"))
            connection.execute(text("SELECT pg_stat_force_next_flush()"))
        engine.dispose()
        found = per_message(before, snapshot(url), messages=1)
        assert {"table": "t", "scans": 3, "rows_read": 300} in found["sequential_scans"]
        assert found["commits"] >= 1


def test_a_snapshot_counts_the_index_entries_each_table_read() -> None:
    """An index that serves a lookup badly reads many entries for each: the
    count shows it whatever the plan's kind."""
    with postgres_database("bench_activity") as url:
        engine = create_engine(url, future=True)
        _table_t(engine, rows=1000, v="g % 2", index_v=True)
        before = snapshot(url)
        with engine.begin() as connection:
            connection.execute(text("SET enable_seqscan = off"))
            connection.execute(text("SET enable_bitmapscan = off"))
            connection.execute(text("SELECT id FROM t WHERE id = 7"))
            connection.execute(text("SELECT count(*) FROM t WHERE v = 1"))
            connection.execute(text("SELECT pg_stat_force_next_flush()"))
        engine.dispose()
        found = per_message(before, snapshot(url), messages=1)
        assert found["index_reads"] == [{"table": "t", "scans": 2, "entries_read": 501}]


def test_the_watcher_finds_each_address_by_its_index(tmp_path: Path) -> None:
    """On SQLite, by its plan; on PostgreSQL the same (channel, address) index
    serves it (docs/benchmarks.md, twenty-fourth session: the scans counted)."""
    url = f"sqlite:///{tmp_path}/gateway.db"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as session, session.begin():
        for n, address in enumerate(("+62811000001", "+62811000002")):
            message = InboundMessage(
                channel=SMS, provider_id=f"SM{n}", address=address, text="halo"
            )
            assert store_inbound(session, message, "k" * 32)
    watch = TurnWatch(url)
    try:
        assert watch._read(["+62811000001", "+62899"]) == {"+62811000001": (1, 0)}
    finally:
        watch.engine.dispose()
    sql = str(
        _turns_query()
        .params(addresses=["+62811000001"])
        .compile(create_engine("sqlite://"), compile_kwargs={"literal_binds": True})
    )
    with sqlite3.connect(tmp_path / "gateway.db") as connection:
        plan = " ".join(
            row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}")
        )
    assert "SEARCH conversation USING COVERING INDEX" in plan, plan
    assert "(channel=? AND address=?)" in plan, plan
