"""CPU seconds of a process, a thread, a process group, and of the database's
backends, read from /proc.

A service runs in its own process group (bench.soak.stack.Service), so its CPU
is the sum over the processes of that group, read from /proc. PostgreSQL's work
for the run is done by the backends connected to the run's database: they are
listed from pg_stat_activity every half second (from a connection to another
database, so the watcher is not counted) and each one's CPU is kept at the last
value seen; the last half second of a backend that ends, and a backend that
starts and ends between two looks, are missed (the services keep pooled
connections, so few do).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PG_INTERVAL = 0.5


def cpu_of_stat(path: Path) -> float:
    """User + system CPU seconds from a /proc/.../stat file (0 if gone)."""
    try:
        stat = path.read_text(encoding="ascii")
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds used so far by a process."""
    return cpu_of_stat(Path(f"/proc/{pid}/stat"))


def thread_cpu(native_id: int | None) -> float:
    """CPU seconds used so far by one thread of this process."""
    if native_id is None:
        return 0.0
    return cpu_of_stat(Path(f"/proc/self/task/{native_id}/stat"))


def group_cpu(pgid: int) -> float:
    """CPU seconds used so far by the live processes of one process group."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text(encoding="ascii").rsplit(")", 1)[1]
        except OSError:
            continue
        if int(fields.split()[2]) == pgid:
            total += cpu_of_stat(entry / "stat")
    return total


class BackendCpu:
    """CPU of the PostgreSQL backends serving one database, watched in a thread."""

    def __init__(self, server_url: str, database: str) -> None:
        from sqlalchemy import create_engine

        self._engine = create_engine(server_url, future=True, pool_size=1)
        self._database = database
        self._seen: dict[int, tuple[float, float]] = {}  # pid -> (first, last)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _look(self, baseline: bool = False) -> None:
        from sqlalchemy import text

        with self._engine.connect() as connection:
            pids = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :db"),
                {"db": self._database},
            ).scalars()
            for pid in pids:
                cpu = cpu_of_stat(Path(f"/proc/{pid}/stat"))
                first, _ = self._seen.get(pid, (cpu if baseline else 0.0, cpu))
                self._seen[pid] = (first, cpu)

    def _watch(self) -> None:
        while not self._stop.wait(PG_INTERVAL):
            self._look()

    def start(self) -> None:
        """Take the first look (the baseline) and keep watching."""
        self._look(baseline=True)
        self._thread.start()

    def stop(self) -> float:
        """CPU seconds the backends used since start (a backend that started
        later is counted whole)."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._look()
        self._engine.dispose()
        return sum(last - first for first, last in self._seen.values())


def own_cpu() -> float:
    """CPU seconds of this process (load generator and fakes)."""
    return sum(os.times()[:2])
