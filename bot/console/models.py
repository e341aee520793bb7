"""Tables of the agents' console: agents, their login sessions, the audit log.

- `agent`: one call-center agent or supervisor. Passwords are stored only as
  argon2id hashes. `failed_logins` and `locked_until` are no longer used (the
  hard lock was a lockout weapon; `login_throttle` replaced it in revision
  0410); they stay because dropping them would rebuild the table on SQLite.
- `agent_session`: one login. The cookie holds a random token; only its SHA-256
  is stored (`token_hash`), so a copy of the database cannot log anyone in.
- `audit_event`: what agents did (claim, reply, reveal, ...), account changes
  and login alerts. `target` names things by id or keyed hash ("applicant:12
  field:nik", "agent:3"), never personal data in clear.
- `login_throttle`: failed-login counters shared by every gateway process, one
  row per client address, per (username, client address) and per account.

Timestamps are naive UTC (`bot.db.utcnow`), as everywhere else.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)

from bot.db import Base, utcnow

ROLE_AGENT = "agent"
ROLE_SUPERVISOR = "supervisor"
ROLES = (ROLE_AGENT, ROLE_SUPERVISOR)

USERNAME_MAX = 32
DISPLAY_NAME_MAX = 64
TOKEN_HASH_LENGTH = 64  # hex SHA-256
CSRF_TOKEN_MAX = 64
ACTION_MAX = 32
TARGET_MAX = 128
THROTTLE_KEY_MAX = 80


class Agent(Base):
    """A person who answers tickets in the console (role agent or supervisor)."""

    __tablename__ = "agent"
    __table_args__ = (
        UniqueConstraint("username", name="uq_agent_username"),
        CheckConstraint("role IN ('agent', 'supervisor')", name="ck_agent_role"),
        CheckConstraint("length(username) > 0", name="ck_agent_username"),
        CheckConstraint("failed_logins >= 0", name="ck_agent_failed_logins"),
    )

    id = Column(Integer, primary_key=True)
    username = Column(String(USERNAME_MAX), nullable=False)
    display_name = Column(String(DISPLAY_NAME_MAX), nullable=False)
    password_hash = Column(String(255), nullable=False)
    role = Column(String(16), nullable=False, default=ROLE_AGENT)
    active = Column(Boolean, nullable=False, default=True)
    failed_logins = Column(Integer, nullable=False, default=0)
    locked_until = Column(DateTime)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    last_seen_at = Column(DateTime)


class AgentSession(Base):
    """One login: the SHA-256 of the cookie's token, its CSRF token and expiry."""

    __tablename__ = "agent_session"
    __table_args__ = (Index("ix_agent_session_agent", "agent_id"),)

    token_hash = Column(String(TOKEN_HASH_LENGTH), primary_key=True)
    agent_id = Column(
        Integer, ForeignKey("agent.id", ondelete="CASCADE"), nullable=False
    )
    csrf_token = Column(String(CSRF_TOKEN_MAX), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
    last_seen_at = Column(DateTime, nullable=False, default=utcnow)


class AuditEvent(Base):
    """One thing done in the console, by whom, on which ticket; no personal data."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_at", "at"),
        Index("ix_audit_event_action_target", "action", "target", "at"),
        Index("ix_audit_event_agent", "agent_id", "at"),
        Index("ix_audit_event_ticket", "ticket_id", "at"),
    )

    id = Column(Integer, primary_key=True)
    agent_id = Column(Integer, ForeignKey("agent.id"))
    action = Column(String(ACTION_MAX), nullable=False)
    ticket_id = Column(Integer)
    target = Column(String(TARGET_MAX))
    at = Column(DateTime, nullable=False, default=utcnow)


class LoginThrottle(Base):
    """Failed logins of one key (`client:`, `pair:` or `account:`) in the window
    that started at `window_start`; `blocked_until` backs a pair off."""

    __tablename__ = "login_throttle"
    __table_args__ = (
        Index("ix_login_throttle_last_failure", "last_failure_at"),
        Index("ix_login_throttle_agent", "agent_id", "last_failure_at"),
        CheckConstraint("failures >= 0", name="ck_login_throttle_failures"),
    )

    key = Column(String(THROTTLE_KEY_MAX), primary_key=True)
    agent_id = Column(Integer, ForeignKey("agent.id", ondelete="CASCADE"))
    failures = Column(Integer, nullable=False)
    window_start = Column(DateTime, nullable=False)
    last_failure_at = Column(DateTime, nullable=False)
    blocked_until = Column(DateTime)
