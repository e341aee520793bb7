"""Plain values the ticket functions return (never ORM objects).

Note and turn texts can hold personal data (a person may type their NIK), so
they are left out of `repr`: a record that ends up in a log line leaks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.handoff.models import ACTIVE_STATUSES


@dataclass(frozen=True)
class TicketInfo:
    """One ticket."""

    id: int
    conversation_id: int
    channel: str
    reason: str
    status: str
    agent_id: int | None
    applicant_id: int | None
    created_at: datetime
    assigned_at: datetime | None
    first_reply_at: datetime | None
    resolved_at: datetime | None
    cancelled_at: datetime | None
    last_wait_told_minutes: int | None
    last_told_at: datetime | None
    erased_at: datetime | None = None
    """The person's data was erased (`bot.privacy`): shown as "data dihapus"."""

    @property
    def active(self) -> bool:
        """Open or assigned: the bot stays quiet in the conversation."""
        return self.status in ACTIVE_STATUSES

    @classmethod
    def from_row(cls, row: Any) -> TicketInfo:
        """From a row of the `ticket` table."""
        return cls(
            id=row.id,
            conversation_id=row.conversation_id,
            channel=row.channel,
            reason=row.reason,
            status=row.status,
            agent_id=row.agent_id,
            applicant_id=row.applicant_id,
            created_at=row.created_at,
            assigned_at=row.assigned_at,
            first_reply_at=row.first_reply_at,
            resolved_at=row.resolved_at,
            cancelled_at=row.cancelled_at,
            last_wait_told_minutes=row.last_wait_told_minutes,
            last_told_at=row.last_told_at,
            erased_at=row.erased_at,
        )


@dataclass(frozen=True)
class NoteInfo:
    """An agent's internal note on a ticket."""

    id: int
    ticket_id: int
    agent_id: int
    text: str = field(repr=False)
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> NoteInfo:
        """From a row of the `ticket_note` table."""
        return cls(
            id=row.id,
            ticket_id=row.ticket_id,
            agent_id=row.agent_id,
            text=row.text,
            created_at=row.created_at,
        )


@dataclass(frozen=True)
class Turn:
    """One message of a conversation as the agent reads it.

    author: "user" (the person), "bot", "agent" or "system" (queue updates, the
    cancel confirmation). `agent_id` is set for agent turns. `delivery` is the
    outbox status of a sent turn ("pending", "sent", "delivered", "failed",
    "undelivered", "unknown"); None for the person's own messages.
    """

    at: datetime
    author: str
    text: str = field(repr=False)
    agent_id: int | None = None
    delivery: str | None = None


@dataclass(frozen=True)
class QueuedTicket:
    """An open ticket with its place in the queue and the expected wait."""

    ticket: TicketInfo
    position: int
    wait: timedelta


@dataclass(frozen=True)
class QueueStats:
    """The queue for the supervisor, at one moment.

    by_reason and by_channel count the active tickets (open and assigned), with
    every reason and channel present (0 included). resolved_today counts tickets
    resolved since 00:00 WIB.
    """

    open_count: int
    assigned_count: int
    oldest_wait: timedelta | None
    mean_wait: timedelta | None
    by_reason: dict[str, int]
    by_channel: dict[str, int]
    resolved_today: int
