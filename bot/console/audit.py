"""The audit log: what agents did in the console, changes to accounts, and
alerts about password guessing.

Every event names its subject by id only (`applicant:12 field:nik`, `agent:3`),
never personal data in clear. Refused logins are not events (strangers could
flush the log with them): `bot.console.throttle` counts them, and an account
under attack gets one `login_alert` per window. Nothing here commits: the
caller owns the transaction, so an action and its audit event are stored
together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from bot.console.models import ACTION_MAX, TARGET_MAX, Agent, AuditEvent
from bot.db import utcnow

LOGIN = "login"
LOGIN_ALERT = "login_alert"
LOGOUT = "logout"
CLAIM = "claim"
ASSIGN = "assign"
REPLY = "reply"
NOTE = "note"
RESOLVE = "resolve"
REVEAL = "reveal"
AGENT_CREATED = "agent_created"
AGENT_ACTIVATED = "agent_activated"
AGENT_DEACTIVATED = "agent_deactivated"
PASSWORD_SET = "password_set"  # noqa: S105 (an action name)
BATCH_SCHEDULED = "batch_scheduled"
BATCH_CLOSED = "batch_closed"
BATCH_SELECTED = "batch_selected"
BATCH_PUBLISHED = "batch_published"
BATCH_PAUSED = "batch_announce_paused"
BATCH_RESUMED = "batch_announce_resumed"
ACTIONS = (
    LOGIN,
    LOGIN_ALERT,
    LOGOUT,
    CLAIM,
    ASSIGN,
    REPLY,
    NOTE,
    RESOLVE,
    REVEAL,
    AGENT_CREATED,
    AGENT_ACTIVATED,
    AGENT_DEACTIVATED,
    PASSWORD_SET,
    BATCH_SCHEDULED,
    BATCH_CLOSED,
    BATCH_SELECTED,
    BATCH_PUBLISHED,
    BATCH_PAUSED,
    BATCH_RESUMED,
)
"""What is recorded now (older logs may also hold `login_failed`)."""

audit_table = AuditEvent.__table__


@dataclass(frozen=True)
class AuditRecord:
    """One event of the audit log, with the agent's username when known."""

    id: int
    at: datetime
    action: str
    agent_id: int | None
    username: str | None
    ticket_id: int | None
    target: str | None


def record(
    session: Session,
    action: str,
    agent_id: int | None,
    ticket_id: int | None = None,
    target: str | None = None,
    now: datetime | None = None,
) -> None:
    """Add one event (the caller commits it with the action it describes)."""
    if action not in ACTIONS or len(action) > ACTION_MAX:
        raise ValueError(f"unknown audit action {action!r}")
    if target is not None and len(target) > TARGET_MAX:
        raise ValueError(f"audit targets have at most {TARGET_MAX} characters")
    session.execute(
        insert(audit_table).values(
            agent_id=agent_id,
            action=action,
            ticket_id=ticket_id,
            target=target,
            at=now or utcnow(),
        )
    )


@dataclass(frozen=True)
class AuditQuery:
    """Which events to list: each field set narrows the log (dates naive UTC,
    `since` inclusive, `until` exclusive)."""

    action: str | None = None
    agent_id: int | None = None
    ticket_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[Any]:
        """The WHERE conditions of this query."""
        found = []
        if self.action is not None:
            found.append(audit_table.c.action == self.action)
        if self.agent_id is not None:
            found.append(audit_table.c.agent_id == self.agent_id)
        if self.ticket_id is not None:
            found.append(audit_table.c.ticket_id == self.ticket_id)
        if self.since is not None:
            found.append(audit_table.c.at >= self.since)
        if self.until is not None:
            found.append(audit_table.c.at < self.until)
        return found


def count(session: Session, query: AuditQuery) -> int:
    """How many events the query matches."""
    return int(
        session.execute(
            select(func.count(audit_table.c.id)).where(*query.conditions())
        ).scalar_one()
    )


def search(
    session: Session, query: AuditQuery, offset: int = 0, limit: int = 50
) -> list[AuditRecord]:
    """The events the query matches, newest first, from `offset` on."""
    rows = session.execute(
        select(audit_table, Agent.username)
        .select_from(audit_table.outerjoin(Agent, Agent.id == audit_table.c.agent_id))
        .where(*query.conditions())
        .order_by(audit_table.c.at.desc(), audit_table.c.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return [
        AuditRecord(
            id=row.id,
            at=row.at,
            action=row.action,
            agent_id=row.agent_id,
            username=row.username,
            ticket_id=row.ticket_id,
            target=row.target,
        )
        for row in rows
    ]


def latest(session: Session, limit: int = 200) -> list[AuditRecord]:
    """The newest events first."""
    return search(session, AuditQuery(), 0, limit)


def counts_by_agent(
    session: Session, actions: tuple[str, ...], since: datetime
) -> dict[tuple[int, str], int]:
    """Events per (agent id, action) at or after `since`."""
    rows = session.execute(
        select(audit_table.c.agent_id, audit_table.c.action, func.count())
        .where(
            audit_table.c.action.in_(actions),
            audit_table.c.at >= since,
            audit_table.c.agent_id.is_not(None),
        )
        .group_by(audit_table.c.agent_id, audit_table.c.action)
    ).all()
    return {(int(agent_id), str(action)): int(n) for agent_id, action, n in rows}
