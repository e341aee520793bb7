"""Console login sessions: a random token in a cookie, its SHA-256 in the database.

A session lasts at most 8 hours and ends after 30 minutes without activity
(pages, actions, or polls the page marks as following the agent's own input;
automatic polling of an unattended screen does not keep it alive). Each session
has its own CSRF token. Logging out deletes the row, so the cookie is worthless
at once. Functions take a Session and never commit.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from bot.console.agents import AgentInfo, agents_table
from bot.console.models import AgentSession
from bot.db import utcnow

COOKIE_NAME = "console_session"
COOKIE_PATH = "/console"
LIFETIME = timedelta(hours=8)
IDLE_TIMEOUT = timedelta(minutes=30)
TOUCH_INTERVAL = timedelta(seconds=30)
"""Seen-times are written at most this often (polls come every few seconds)."""
TOKEN_BYTES = 32

sessions_table = AgentSession.__table__


@dataclass(frozen=True)
class ConsoleSession:
    """A live login: who, its CSRF token, when it ends at the latest."""

    agent: AgentInfo
    csrf_token: str = field(repr=False)
    expires_at: datetime
    token_hash: str = field(repr=False)


def token_hash(token: str) -> str:
    """The stored form of a session token (hex SHA-256)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (32 bytes, URL-safe base64)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def open_session(
    session: Session, agent: AgentInfo, now: datetime | None = None
) -> tuple[str, ConsoleSession]:
    """Start a session for `agent`; returns the cookie token and the session."""
    moment = now or utcnow()
    purge_expired(session, moment)
    token = new_token()
    hashed = token_hash(token)
    csrf = secrets.token_urlsafe(TOKEN_BYTES)
    expires = moment + LIFETIME
    session.execute(
        insert(sessions_table).values(
            token_hash=hashed,
            agent_id=agent.id,
            csrf_token=csrf,
            created_at=moment,
            expires_at=expires,
            last_seen_at=moment,
        )
    )
    session.execute(
        update(agents_table)
        .where(agents_table.c.id == agent.id)
        .values(last_seen_at=moment)
    )
    return token, ConsoleSession(agent, csrf, expires, hashed)


def load_session(
    session: Session,
    token: str | None,
    now: datetime | None = None,
    activity: bool = True,
) -> ConsoleSession | None:
    """The live session of a cookie token, or None (unknown, expired, idle too
    long, or its agent deactivated; an expired row is deleted). `activity`
    says whether this request counts as the agent's activity (keeps the
    session from going idle); either way the agent is marked as seen."""
    if not token or len(token) > 128:
        return None
    moment = now or utcnow()
    hashed = token_hash(token)
    sessions, agents = sessions_table.c, agents_table.c
    row = session.execute(
        select(
            sessions.agent_id,
            sessions.csrf_token,
            sessions.expires_at,
            sessions.last_seen_at,
            agents.username,
            agents.display_name,
            agents.role,
            agents.active,
            agents.last_seen_at.label("agent_seen_at"),
        )
        .join(agents_table, agents.id == sessions.agent_id)
        .where(sessions.token_hash == hashed)
    ).one_or_none()
    if row is None:
        return None
    expired = moment >= row.expires_at or moment - row.last_seen_at >= IDLE_TIMEOUT
    if expired or not row.active:
        session.execute(
            delete(sessions_table).where(sessions_table.c.token_hash == hashed)
        )
        return None
    if activity and moment - row.last_seen_at >= TOUCH_INTERVAL:
        session.execute(
            update(sessions_table)
            .where(sessions_table.c.token_hash == hashed)
            .values(last_seen_at=moment)
        )
    session.execute(
        update(agents_table)
        .where(
            agents_table.c.id == row.agent_id,
            or_(
                agents_table.c.last_seen_at.is_(None),
                agents_table.c.last_seen_at <= moment - TOUCH_INTERVAL,
            ),
        )
        .values(last_seen_at=moment)
    )
    agent = AgentInfo(
        id=row.agent_id,
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        active=bool(row.active),
        last_seen_at=row.agent_seen_at,
    )
    return ConsoleSession(agent, row.csrf_token, row.expires_at, hashed)


def close_session(session: Session, token: str | None) -> None:
    """Log out: delete the session of this token (nothing if unknown)."""
    if token:
        session.execute(
            delete(sessions_table).where(
                sessions_table.c.token_hash == token_hash(token)
            )
        )


def purge_expired(session: Session, now: datetime | None = None) -> int:
    """Delete sessions past their lifetime or idle too long; how many."""
    moment = now or utcnow()
    result = session.execute(
        delete(sessions_table).where(
            or_(
                sessions_table.c.expires_at <= moment,
                sessions_table.c.last_seen_at <= moment - IDLE_TIMEOUT,
            )
        )
    )
    return int(result.rowcount or 0)
