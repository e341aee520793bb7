"""Tables of the handoff to agents: tickets and the agents' internal notes.

A ticket is one request for a person in one conversation. The rules that must
hold under simultaneous requests are constraints:
- at most one active ticket (open or assigned) per conversation: a partial unique
  index (`uq_ticket_one_active`), so two triggers at once open one ticket;
- an open ticket has no agent, an assigned one has an agent and the moment it was
  assigned; a resolved ticket has `resolved_at`, a cancelled one `cancelled_at`;
- status, reason and channel only take the listed values.

`agent_id` is a plain integer (the console's `agent` table joins on it).
Timestamps are naive UTC, as everywhere (`bot.db.utcnow`).
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)

from bot.db import Base, utcnow

TICKET_OPEN = "open"
TICKET_ASSIGNED = "assigned"
TICKET_RESOLVED = "resolved"
TICKET_CANCELLED = "cancelled"
TICKET_STATUSES = (TICKET_OPEN, TICKET_ASSIGNED, TICKET_RESOLVED, TICKET_CANCELLED)
ACTIVE_STATUSES = (TICKET_OPEN, TICKET_ASSIGNED)

REASON_REQUEST_HUMAN = "request_human"
REASON_FALLBACK = "fallback"
REASON_COMPLAINT = "complaint"
REASON_UNFIXABLE = "unfixable"
REASONS = (REASON_REQUEST_HUMAN, REASON_FALLBACK, REASON_COMPLAINT, REASON_UNFIXABLE)
"""Why the bot handed the conversation over (shown in the console)."""

TICKET_CHANNELS = ("telegram", "sms")

MAX_NOTE_LENGTH = 4000


def _in(column: str, values: tuple[str, ...]) -> str:
    """SQL for `column IN ('a', 'b')` from constant values (never user input)."""
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


ONE_ACTIVE_TICKET = _in("status", ACTIVE_STATUSES)
"""Where-clause of the partial unique index (SQLite and PostgreSQL share it)."""


class Ticket(Base):
    """A conversation waiting for, or served by, an agent."""

    __tablename__ = "ticket"
    __table_args__ = (
        CheckConstraint(_in("status", TICKET_STATUSES), name="ck_ticket_status"),
        CheckConstraint(_in("reason", REASONS), name="ck_ticket_reason"),
        CheckConstraint(_in("channel", TICKET_CHANNELS), name="ck_ticket_channel"),
        CheckConstraint(
            f"status <> '{TICKET_OPEN}' OR agent_id IS NULL",
            name="ck_ticket_open_unassigned",
        ),
        CheckConstraint(
            f"status <> '{TICKET_ASSIGNED}'"
            " OR (agent_id IS NOT NULL AND assigned_at IS NOT NULL)",
            name="ck_ticket_assigned",
        ),
        CheckConstraint(
            f"(status = '{TICKET_RESOLVED}') = (resolved_at IS NOT NULL)",
            name="ck_ticket_resolved",
        ),
        CheckConstraint(
            f"(status = '{TICKET_CANCELLED}') = (cancelled_at IS NOT NULL)",
            name="ck_ticket_cancelled",
        ),
        CheckConstraint(
            "last_wait_told_minutes IS NULL OR last_wait_told_minutes >= 0",
            name="ck_ticket_wait_told",
        ),
        Index(
            "uq_ticket_one_active",
            "conversation_id",
            unique=True,
            sqlite_where=text(ONE_ACTIVE_TICKET),
            postgresql_where=text(ONE_ACTIVE_TICKET),
        ),
        Index("ix_ticket_status_created", "status", "created_at"),
        Index("ix_ticket_conversation", "conversation_id", "id"),
    )

    id = Column(Integer, primary_key=True)
    conversation_id = Column(
        Integer, ForeignKey("conversation.id", ondelete="CASCADE"), nullable=False
    )
    channel = Column(String(16), nullable=False)
    reason = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False, default=TICKET_OPEN)
    agent_id = Column(Integer)
    applicant_id = Column(Integer, ForeignKey("applicant.id", ondelete="SET NULL"))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    assigned_at = Column(DateTime)
    first_reply_at = Column(DateTime)
    resolved_at = Column(DateTime)
    cancelled_at = Column(DateTime)
    last_wait_told_minutes = Column(Integer)
    last_told_at = Column(DateTime)
    erased_at = Column(DateTime)
    """The person's data was erased: the console shows "data dihapus"."""


class TicketNote(Base):
    """An agent's internal note on a ticket (never sent to the person)."""

    __tablename__ = "ticket_note"
    __table_args__ = (
        CheckConstraint("length(text) > 0", name="ck_ticket_note_text"),
        Index("ix_ticket_note_ticket", "ticket_id", "id"),
    )

    id = Column(Integer, primary_key=True)
    ticket_id = Column(
        Integer, ForeignKey("ticket.id", ondelete="CASCADE"), nullable=False
    )
    agent_id = Column(Integer, nullable=False)
    text = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
