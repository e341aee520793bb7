"""A read that changes nothing, on PostgreSQL: in a transaction (psycopg2's
`BEGIN`, the statement, SQLAlchemy's `ROLLBACK` as the connection closes) or
outside one (`bot.db.reading`: the statement alone). Both ways run one
statement through SQLAlchemy Core: the difference carries over to the hot
paths' reads, not the absolute time. Each round runs the ways in the same
order.

`python -m bench.pg_reads` runs the same one-row read both ways on pooled
connections of `bot.db.make_engine`, alternating rounds (the machine drifts),
and prints for each way the wall and CPU time of this process a read, and the
commits and rollbacks a read counted by PostgreSQL (`pg_stat_database` of a
database made for the run, read once the backend reported them): a read in a
transaction ends in a rollback (the `BEGIN` and the `ROLLBACK` are round trips
of their own), a read outside one counts as a commit.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bot.db import make_engine, read_connection

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
READ = text("SELECT datname FROM pg_database WHERE datname = :name")
STATS = text(
    "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = :name"
)
STATS_SETTLE_S = 11.0
"""PostgreSQL 15 reports a backend's counts when it ends, an idle one's within
ten seconds: the counts are awaited this long at most."""
STATS_POLL_S = 0.1
BACKENDS = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name")


def read_in_transaction(engine: Engine, name: str) -> None:
    """The read as before: a connection's implicit transaction."""
    with engine.connect() as connection:
        connection.execute(READ, {"name": name}).scalar()


def read_outside_transaction(engine: Engine, name: str) -> None:
    """The read through `bot.db.reading`."""
    with read_connection(engine) as connection:
        connection.execute(READ, {"name": name}).scalar()


Reader = Callable[[Engine, str], None]
WAYS: dict[str, Reader] = {
    "in a transaction": read_in_transaction,
    "outside (bot.db.reading)": read_outside_transaction,
}


def _timed(way: Reader, engine: Engine, name: str, reads: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(reads):
        way(engine, name)
    return (
        (time.perf_counter() - wall) / reads * 1e6,
        (time.process_time() - cpu) / reads * 1e6,
    )


def _transactions(admin: Engine, name: str) -> tuple[int, int]:
    with admin.connect() as connection:
        commits, rollbacks = connection.execute(STATS, {"name": name}).one()
        return int(commits), int(rollbacks)


def _after_exit(admin: Engine, name: str) -> tuple[int, int]:
    """The database's counts once no backend is connected to it (a backend
    reports its counts as it ends) and they stopped moving, within
    `STATS_SETTLE_S`."""
    deadline = time.monotonic() + STATS_SETTLE_S
    while time.monotonic() < deadline:
        with admin.connect() as connection:
            if not connection.execute(BACKENDS, {"name": name}).scalar_one():
                break
        time.sleep(STATS_POLL_S)
    counts = _transactions(admin, name)
    while time.monotonic() < deadline:
        time.sleep(STATS_POLL_S)
        again = _transactions(admin, name)
        if again == counts:
            break
        counts = again
    return counts


def _used(url: str, admin: Engine, name: str, way: Reader, reads: int) -> tuple:
    """The database's counts after a fresh engine connected, read `reads`
    times more than once the way `way`, and ended."""
    engine = make_engine(url)
    try:
        for _ in range(1 + reads):
            way(engine, name)
    finally:
        engine.dispose()
    return _after_exit(admin, name)


def _count_transactions(
    url: str, admin: Engine, name: str, reads: int
) -> dict[str, tuple[float, float]]:
    """Each way's commits and rollbacks a read: an engine reading `reads`
    times more than another, the other's counts (its connecting, SQLAlchemy's
    first questions) taken off."""
    counted = {}
    for label, way in WAYS.items():
        start = _after_exit(admin, name)
        base = _used(url, admin, name, way, 0)
        end = _used(url, admin, name, way, reads)
        counted[label] = tuple(
            ((e - b) - (b - s)) / reads
            for s, b, e in zip(start, base, end, strict=True)
        )
    return counted


def measure(url: str, reads: int, rounds: int) -> list[str]:
    """Both ways on the database at `url` (its name read by the statement):
    the report's table rows, one a way."""
    name = make_url(url).database or ""
    admin = create_engine(  # on another database: its own reads not counted
        make_url(url).set(database="postgres"),
        future=True,
        isolation_level="AUTOCOMMIT",
    )
    engine = make_engine(url)
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in WAYS}
    try:
        counted = _count_transactions(url, admin, name, min(reads, 500))
        for way in WAYS.values():
            _timed(way, engine, name, min(reads, 200))  # warm
        for _ in range(rounds):
            for label, way in WAYS.items():
                times[label].append(_timed(way, engine, name, reads))
    finally:
        engine.dispose()
        admin.dispose()
    rows = []
    for label in WAYS:
        wall = statistics.median(t[0] for t in times[label])
        cpu = statistics.median(t[1] for t in times[label])
        commits, rollbacks = counted[label]
        rows.append(
            f"| {label} | {wall:.0f} | {cpu:.0f} | {commits:.2f} / {rollbacks:.2f} |"
        )
    return rows


def main() -> None:
    """Time both ways, alternating, and count their transactions, on a
    database made for the run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--reads", type=int, default=3000, help="reads a round")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    server = create_engine(args.postgres_url, future=True, isolation_level="AUTOCOMMIT")
    name = f"bench_pg_reads_{uuid.uuid4().hex[:8]}"
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(args.postgres_url).set(database=name)
        rows = measure(url.render_as_string(False), args.reads, args.rounds)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()
    print(f"{args.rounds} rounds of {args.reads} reads each way, alternating\n")
    print("| read | wall µs a read (median) | CPU µs a read (median) "
          "| commits / rollbacks a read |")  # fmt: skip
    print("| --- | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
