"""Console agents: create, find, list, change password, deactivate.

Usernames are lower-case ASCII (`a-z 0-9 . _ -`, 2 to 32 characters). Functions
take a Session and never commit. `AgentInfo` never carries the password hash.
Creating an account, setting its password and (de)activating it are audited
with who did it: the acting agent's id, and/or `via` (e.g. `cli:<os user>` for
the command line) after the target (`agent:3 by:cli:root`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.console import audit, throttle
from bot.console.models import (
    DISPLAY_NAME_MAX,
    ROLE_SUPERVISOR,
    ROLES,
    Agent,
    AgentSession,
)
from bot.console.password_policy import check_password_rules
from bot.console.passwords import hash_password
from bot.db import utcnow

USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")

agents_table = Agent.__table__


def _target(agent_id: int, via: str | None) -> str:
    return f"agent:{agent_id}" + (f" by:{via}" if via else "")


class AgentExists(ValueError):  # noqa: N818 (reads as the refusal)
    """An agent with this username exists already."""


class AgentNotFound(LookupError):  # noqa: N818 (reads as the refusal)
    """No agent with this username or id."""


@dataclass(frozen=True)
class AgentInfo:
    """One agent, without the password hash."""

    id: int
    username: str
    display_name: str
    role: str
    active: bool
    last_seen_at: datetime | None

    @property
    def is_supervisor(self) -> bool:
        """Supervisors see every ticket and the supervisor view."""
        return self.role == ROLE_SUPERVISOR

    @classmethod
    def from_row(cls, row: Any) -> AgentInfo:
        """From a row of the `agent` table."""
        return cls(
            id=row.id,
            username=row.username,
            display_name=row.display_name,
            role=row.role,
            active=bool(row.active),
            last_seen_at=row.last_seen_at,
        )


def normalize_username(username: str) -> str:
    """The stored form of a username (stripped, lower-case)."""
    return username.strip().lower()


def check_username(username: str) -> str:
    """The normalized username, or ValueError when it has the wrong shape."""
    clean = normalize_username(username)
    if not USERNAME_PATTERN.fullmatch(clean):
        raise ValueError(
            "Nama pengguna 2-32 karakter: huruf kecil, angka, titik, _ atau -."
        )
    return clean


def create_agent(
    session: Session,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
    created_by: int | None = None,
    now: datetime | None = None,
    via: str | None = None,
) -> AgentInfo:
    """Add an agent with an argon2id password hash; `AgentExists` if taken
    (`created_by`, `via`: who did it, for the audit log)."""
    clean = check_username(username)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    name = (display_name or clean).strip()[:DISPLAY_NAME_MAX] or clean
    check_password_rules(password, (clean, name))
    moment = now or utcnow()
    if find_agent(session, clean) is not None:
        raise AgentExists(f"agent {clean!r} exists already")
    try:
        with session.begin_nested():
            session.execute(
                insert(agents_table).values(
                    username=clean,
                    display_name=name,
                    password_hash=hash_password(password),
                    role=role,
                    active=True,
                    failed_logins=0,
                    created_at=moment,
                )
            )
    except IntegrityError as exc:  # created meanwhile by someone else
        raise AgentExists(f"agent {clean!r} exists already") from exc
    agent = find_agent(session, clean)
    assert agent is not None
    audit.record(
        session,
        audit.AGENT_CREATED,
        created_by,
        target=_target(agent.id, via),
        now=moment,
    )
    return agent


def get_agent(session: Session, agent_id: int) -> AgentInfo | None:
    """The agent with this id, if any."""
    row = session.execute(
        select(agents_table).where(agents_table.c.id == agent_id)
    ).one_or_none()
    return None if row is None else AgentInfo.from_row(row)


def find_agent(session: Session, username: str) -> AgentInfo | None:
    """The agent with this username, if any."""
    row = session.execute(
        select(agents_table).where(
            agents_table.c.username == normalize_username(username)
        )
    ).one_or_none()
    return None if row is None else AgentInfo.from_row(row)


def list_agents(session: Session, active_only: bool = False) -> list[AgentInfo]:
    """Every agent (or every active one), by display name."""
    query = select(agents_table).order_by(
        agents_table.c.display_name, agents_table.c.id
    )
    if active_only:
        query = query.where(agents_table.c.active.is_(True))
    return [AgentInfo.from_row(row) for row in session.execute(query)]


def set_password(
    session: Session,
    username: str,
    password: str,
    now: datetime | None = None,
    changed_by: int | None = None,
    via: str | None = None,
) -> AgentInfo:
    """Replace an agent's password, clear its login counters and end its
    sessions (`changed_by`, `via`: who did it, for the audit log)."""
    agent = find_agent(session, username)
    if agent is None:
        raise AgentNotFound(f"no agent {normalize_username(username)!r}")
    check_password_rules(password, (agent.username, agent.display_name))
    session.execute(
        update(agents_table)
        .where(agents_table.c.id == agent.id)
        .values(password_hash=hash_password(password))
    )
    throttle.forget_account(session, agent.id)
    end_sessions(session, agent.id)
    audit.record(
        session,
        audit.PASSWORD_SET,
        changed_by,
        target=_target(agent.id, via),
        now=now,
    )
    return agent


def set_active(
    session: Session,
    username: str,
    active: bool,
    changed_by: int | None = None,
    via: str | None = None,
    now: datetime | None = None,
) -> AgentInfo:
    """Activate or deactivate an agent; deactivating ends its sessions
    (`changed_by`, `via`: who did it, for the audit log)."""
    agent = find_agent(session, username)
    if agent is None:
        raise AgentNotFound(f"no agent {normalize_username(username)!r}")
    session.execute(
        update(agents_table).where(agents_table.c.id == agent.id).values(active=active)
    )
    if not active:
        end_sessions(session, agent.id)
    audit.record(
        session,
        audit.AGENT_ACTIVATED if active else audit.AGENT_DEACTIVATED,
        changed_by,
        target=_target(agent.id, via),
        now=now,
    )
    found = get_agent(session, agent.id)
    assert found is not None
    return found


def end_sessions(session: Session, agent_id: int) -> None:
    """Log an agent out everywhere."""
    session.execute(delete(AgentSession).where(AgentSession.agent_id == agent_id))
