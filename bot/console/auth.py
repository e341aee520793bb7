"""Logging in to the console, with password guessing limited.

- Per username: 5 failed passwords in a row lock the account for 15 minutes
  (`agent.failed_logins`, `agent.locked_until`; a conditional UPDATE counts, so
  simultaneous guesses are all counted). A success resets the count.
- Per client: 20 failed logins from one IP address within 15 minutes refuse
  every further login from it for the rest of the window. Failures are audit
  events whose target is a keyed hash of the address (`ip:<hmac>`), counted in
  the database, so every gateway process sees the same count.

Every refusal looks the same to the person logging in (a generic message); the
reason is only in the result, for the audit log and the tests. An unknown
username costs one argon2 verification too, so timing does not tell which
usernames exist.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.console import audit
from bot.console.agents import AgentInfo, agents_table, normalize_username
from bot.console.password_policy import MAX_PASSWORD_LENGTH
from bot.console.passwords import (
    burn_verification,
    hash_password,
    needs_rehash,
    verify_password,
)
from bot.db import utcnow

FAILURES_BEFORE_LOCK = 5
LOCK_DURATION = timedelta(minutes=15)
CLIENT_FAILURE_LIMIT = 20
CLIENT_WINDOW = timedelta(minutes=15)

OK = "ok"
BAD_CREDENTIALS = "bad_credentials"
LOCKED = "locked"
CLIENT_LIMITED = "client_limited"


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login: the agent when `outcome` is ok."""

    outcome: str
    agent: AgentInfo | None = None

    @property
    def ok(self) -> bool:
        """The password was right and nothing refuses the login."""
        return self.outcome == OK


def client_target(secret: bytes, address: str) -> str:
    """The audit target naming a client address: `ip:` and a keyed hash."""
    digest = hmac.new(secret, address.encode(), hashlib.sha256).hexdigest()
    return f"ip:{digest[:32]}"


def client_failures(session: Session, target: str, now: datetime) -> int:
    """Failed logins from this client within the window."""
    return audit.count_since(session, audit.LOGIN_FAILED, target, now - CLIENT_WINDOW)


def _count_failure(session: Session, agent_id: int, now: datetime) -> None:
    session.execute(
        update(agents_table)
        .where(agents_table.c.id == agent_id)
        .values(failed_logins=agents_table.c.failed_logins + 1)
    )
    session.execute(
        update(agents_table)
        .where(
            agents_table.c.id == agent_id,
            agents_table.c.failed_logins >= FAILURES_BEFORE_LOCK,
        )
        .values(failed_logins=0, locked_until=now + LOCK_DURATION)
    )


def authenticate(
    session: Session,
    username: str,
    password: str,
    client: str,
    now: datetime | None = None,
) -> LoginResult:
    """Check a login; count a failure per username and per client (`client`:
    the audit target from `client_target`). The caller commits either way."""
    moment = now or utcnow()
    if client_failures(session, client, moment) >= CLIENT_FAILURE_LIMIT:
        audit.record(session, audit.LOGIN_FAILED, None, target=client, now=moment)
        return LoginResult(CLIENT_LIMITED)
    row = session.execute(
        select(agents_table).where(
            agents_table.c.username == normalize_username(username)[:64]
        )
    ).one_or_none()
    if row is None or not row.active or len(password) > MAX_PASSWORD_LENGTH:
        burn_verification(password[:MAX_PASSWORD_LENGTH])
        agent_id = None if row is None else row.id
        audit.record(session, audit.LOGIN_FAILED, agent_id, target=client, now=moment)
        return LoginResult(BAD_CREDENTIALS)
    locked = row.locked_until is not None and row.locked_until > moment
    right = verify_password(row.password_hash, password)
    if locked or not right:
        if not locked:
            _count_failure(session, row.id, moment)
        audit.record(session, audit.LOGIN_FAILED, row.id, target=client, now=moment)
        return LoginResult(LOCKED if locked else BAD_CREDENTIALS)
    values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
    if needs_rehash(row.password_hash):
        values["password_hash"] = hash_password(password)
    session.execute(
        update(agents_table).where(agents_table.c.id == row.id).values(**values)
    )
    audit.record(session, audit.LOGIN, row.id, now=moment)
    return LoginResult(OK, AgentInfo.from_row(row))
