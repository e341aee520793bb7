"""Leases that die with their process: one heartbeat row per gateway process.

A conversation, an outbox row or a NIK job is held by a lease: `lease_owner` (the
process), `lease_until` (a backstop for a stuck task) and a fencing token. Each
gateway process writes its row in `gateway_process` about every second
(`bot.gateway.heartbeat.Heartbeat`). A lease is free when it has no owner, when
`lease_until` has passed, or when its owner's heartbeat is older than the
heartbeat timeout (a few seconds): so work held by a killed process is taken over
within seconds, not after the 120 s backstop. A clean stop marks the row retired,
which frees whatever it still holds at once.

Fencing: every claim writes a new token (the claim's `lease_token`; for jobs the
claim's attempt number), and every write guarded by the lease names owner and
token. A process that was paused (not dead) past the timeout and then wakes up
finds another owner or token on the row and its write changes nothing.

An owner without a heartbeat row (older code, tools) keeps the `lease_until`
rule only. Times are the processes' clocks (naive UTC), as everywhere here: keep
the machines' clocks synchronised (NTP).
"""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    String,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from bot.db import Base

HEARTBEAT_INTERVAL = 1.0
"""Seconds between a process's heartbeats (the default of every process)."""
HEARTBEAT_TIMEOUT = 3.0
"""Seconds after which a heartbeat is stale: its process's leases are free."""
RETIRED = datetime(2000, 1, 1)
"""The heartbeat a cleanly stopped process leaves: stale for everyone at once."""


class GatewayProcess(Base):
    """One running (or dead, or retired) gateway process and its last heartbeat."""

    __tablename__ = "gateway_process"

    owner = Column(String(64), primary_key=True)
    started_at = Column(DateTime, nullable=False)
    heartbeat_at = Column(DateTime, nullable=False, index=True)


processes = GatewayProcess.__table__


def stale_before(now: datetime, timeout: float) -> datetime:
    """Heartbeats older than this are from dead (or paused) processes."""
    return now - timedelta(seconds=timeout)


def owner_id(role: str = "") -> str:
    """A name for a process's leases: its role (if any), host, pid and a random
    part (at most 64 characters)."""
    host = socket.gethostname()[:30]
    name = f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return f"{role[:16]}:{name}" if role else name


def dead(owner: Any, stale: Any) -> Any:
    """SQL: the process named in column `owner` has a heartbeat older than
    `stale` (killed, paused or retired)."""
    return owner.in_(select(processes.c.owner).where(processes.c.heartbeat_at < stale))


def lease_free(
    owner: Any, until: Any, now: datetime, stale: datetime | None, me: str | None
) -> Any:
    """SQL: the lease in columns `owner`/`until` may be taken now by process
    `me` (`stale`: the heartbeat cutoff, None for the `lease_until` rule alone).
    A process never counts its own heartbeat stale: it is alive, however late a
    starved event loop wrote it; taking its own work over would run it twice."""
    rules = [owner.is_(None), until.is_(None), until < now]
    if stale is not None:
        gone = dead(owner, stale)
        rules.append(gone if me is None else and_(owner != me, gone))
    return or_(*rules)


class Tokens:
    """Fencing tokens of one process: a new number for every claim (thread-safe:
    `itertools.count` advances atomically under the GIL)."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def new(self) -> int:
        """A token no earlier claim of this process used."""
        return next(self._next)


def register(session: Session, owner: str, now: datetime) -> None:
    """Record a starting process with a fresh heartbeat; the caller commits."""
    session.execute(
        insert(processes).values(owner=owner, started_at=now, heartbeat_at=now)
    )


def beat(session: Session, owner: str, now: datetime) -> None:
    """Refresh the process's heartbeat (recording it again if it was purged); the
    caller commits."""
    result = session.execute(
        update(processes).where(processes.c.owner == owner).values(heartbeat_at=now)
    )
    if result.rowcount == 0:
        register(session, owner, now)


def retire(session: Session, owner: str) -> None:
    """A clean stop: what the process still holds is free at once; the caller
    commits."""
    session.execute(
        update(processes).where(processes.c.owner == owner).values(heartbeat_at=RETIRED)
    )


def purge(session: Session, before: datetime) -> int:
    """Forget processes silent since `before` (long dead or retired; their leases
    have run out); how many. The caller commits."""
    result = session.execute(delete(processes).where(processes.c.heartbeat_at < before))
    return int(result.rowcount or 0)


def live_processes(session: Session, now: datetime, timeout: float) -> list[str]:
    """The owners whose heartbeat is fresh."""
    query = select(processes.c.owner).where(
        processes.c.heartbeat_at >= stale_before(now, timeout)
    )
    return [str(owner) for owner in session.execute(query).scalars()]


def live_heartbeats(
    session: Session, now: datetime, timeout: float
) -> dict[str, datetime]:
    """The owners whose heartbeat is fresh, with their last heartbeat."""
    query = select(processes.c.owner, processes.c.heartbeat_at).where(
        processes.c.heartbeat_at >= stale_before(now, timeout)
    )
    return {str(owner): beat for owner, beat in session.execute(query).all()}
