"""Failed-login counters in the database, shared by every gateway process.

One `login_throttle` row per key, counting failures in a fixed window that
starts at the first failure (a failure after the window opens a new one):

- `client:<ip hash>`: login attempts from one client address that did not
  succeed (`bot.console.auth` counts each attempt in advance and takes the
  count back when the password is right);
- `pair:<hash>`: attempts for one typed username from one address, which back
  that pair off exponentially (`blocked_until`);
- `account:<agent id>`: failed passwords for one account from anywhere, which
  never refuses anything: it only raises an alert for supervisors.

A counter is one `INSERT ... ON CONFLICT DO UPDATE`, so simultaneous failures
in several processes are all counted (PostgreSQL locks the row until commit).
Keys hold only keyed hashes and ids, never an address or a username in clear.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from bot.console.models import LoginThrottle
from bot.registry._sql import upsert_statement

throttle_table = LoginThrottle.__table__

CLIENT = "client"
PAIR = "pair"
ACCOUNT = "account"
RETENTION = timedelta(days=1)
"""Rows idle this long (and not blocking) are deleted."""


@dataclass(frozen=True)
class Counter:
    """Failures of one key in its open window."""

    failures: int
    window_start: datetime
    blocked_until: datetime | None


def client_key(client: str) -> str:
    """The key of a client address (`client`: its `ip:<hmac>` name)."""
    return f"{CLIENT}:{client}"


def pair_key(client: str, username: str) -> str:
    """The key of (typed username, client address): a hash of both."""
    digest = hashlib.sha256(f"{client}\n{username}".encode()).hexdigest()
    return f"{PAIR}:{digest[:48]}"


def account_key(agent_id: int) -> str:
    """The key of one account."""
    return f"{ACCOUNT}:{agent_id}"


def current(
    session: Session, key: str, window: timedelta, now: datetime
) -> Counter | None:
    """The key's counter if its window is still open at `now`."""
    row = session.execute(
        select(
            throttle_table.c.failures,
            throttle_table.c.window_start,
            throttle_table.c.blocked_until,
        ).where(throttle_table.c.key == key)
    ).one_or_none()
    if row is None or row.window_start <= now - window:
        return None
    return Counter(row.failures, row.window_start, row.blocked_until)


def count_failure(
    session: Session,
    key: str,
    window: timedelta,
    now: datetime,
    agent_id: int | None = None,
) -> Counter:
    """Count one failure of `key` (a new window when the last one is over)."""
    expired = throttle_table.c.window_start <= now - window
    statement = upsert_statement(session, throttle_table).values(
        key=key,
        agent_id=agent_id,
        failures=1,
        window_start=now,
        last_failure_at=now,
        blocked_until=None,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "failures": case(
                (expired, 1), else_=throttle_table.c.failures + 1
            ),
            "window_start": case((expired, now), else_=throttle_table.c.window_start),
            "last_failure_at": now,
            "agent_id": agent_id,
        },
    )
    session.execute(statement)
    found = current(session, key, window, now)
    assert found is not None  # counted just now, in this transaction
    return found


def block(session: Session, key: str, until: datetime) -> None:
    """Refuse `key` until `until`."""
    session.execute(
        update(throttle_table)
        .where(throttle_table.c.key == key)
        .values(blocked_until=until)
    )


def uncount(session: Session, key: str) -> None:
    """Take back one counted failure of `key` (an attempt that succeeded)."""
    session.execute(
        update(throttle_table)
        .where(throttle_table.c.key == key, throttle_table.c.failures > 0)
        .values(failures=throttle_table.c.failures - 1)
    )


def forget(session: Session, key: str) -> None:
    """Drop a key's counter (a pair after its right password)."""
    session.execute(delete(throttle_table).where(throttle_table.c.key == key))


def forget_account(session: Session, agent_id: int) -> None:
    """Drop every counter naming this account (its password was changed)."""
    session.execute(
        delete(throttle_table).where(throttle_table.c.agent_id == agent_id)
    )


def purge(session: Session, now: datetime) -> int:
    """Delete counters idle for `RETENTION` that block nothing; how many."""
    result = session.execute(
        delete(throttle_table).where(
            throttle_table.c.last_failure_at < now - RETENTION,
            or_(
                throttle_table.c.blocked_until.is_(None),
                throttle_table.c.blocked_until < now,
            ),
        )
    )
    return int(result.rowcount or 0)


@dataclass(frozen=True)
class AccountAlert:
    """An account with many failed passwords in the current window."""

    agent_id: int
    failures: int
    addresses: int
    since: datetime
    last_failure_at: datetime


def account_alerts(
    session: Session, window: timedelta, threshold: int, now: datetime
) -> list[AccountAlert]:
    """Accounts with at least `threshold` failures in their open window, with
    how many client addresses tried them in that window (most failures first)."""
    opened = now - window
    accounts = session.execute(
        select(
            throttle_table.c.agent_id,
            throttle_table.c.failures,
            throttle_table.c.window_start,
            throttle_table.c.last_failure_at,
        )
        .where(
            throttle_table.c.key.like(f"{ACCOUNT}:%"),
            throttle_table.c.window_start > opened,
            throttle_table.c.failures >= threshold,
        )
        .order_by(throttle_table.c.failures.desc())
    ).all()
    if not accounts:
        return []
    ids = [row.agent_id for row in accounts]
    pairs = dict(
        session.execute(
            select(throttle_table.c.agent_id, func.count())
            .where(
                and_(
                    throttle_table.c.key.like(f"{PAIR}:%"),
                    throttle_table.c.agent_id.in_(ids),
                    throttle_table.c.last_failure_at > opened,
                )
            )
            .group_by(throttle_table.c.agent_id)
        ).all()
    )
    return [
        AccountAlert(
            agent_id=int(row.agent_id),
            failures=int(row.failures),
            addresses=int(pairs.get(row.agent_id, 0)),
            since=row.window_start,
            last_failure_at=row.last_failure_at,
        )
        for row in accounts
    ]


@dataclass(frozen=True)
class RefusedLogins:
    """Refused logins counted in client windows still open."""

    refused: int
    addresses: int
    limited: int


def refused_logins(
    session: Session, window: timedelta, limit: int, now: datetime
) -> RefusedLogins:
    """Refused logins in open client windows, from how many addresses, and how
    many of those addresses are refused outright (at `limit`)."""
    row = session.execute(
        select(
            func.coalesce(func.sum(throttle_table.c.failures), 0),
            func.count(),
            func.coalesce(
                func.sum(case((throttle_table.c.failures >= limit, 1), else_=0)), 0
            ),
        ).where(
            throttle_table.c.key.like(f"{CLIENT}:%"),
            throttle_table.c.window_start > now - window,
        )
    ).one()
    return RefusedLogins(int(row[0]), int(row[1]), int(row[2]))

