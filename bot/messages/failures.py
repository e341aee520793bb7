"""Messages the gateway gave up on, for operators: a count and the latest rows.

A message is given up (inbox status "failed") when its turn kept failing (Rasa
errors, actions that failed mid-turn), its result could not be stored, or the
channel could not handle it; the person got the apology when they wrote it. The
count goes on /healthz, the rows on the console's supervisor page. Only ids,
times, the channel, attempts and the stored error (no text, no address) leave
this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.messages.models import INBOX_FAILED, Conversation, InboxMessage

WINDOW = timedelta(hours=24)
"""How far back the count and the list look."""
LIST_LIMIT = 20


@dataclass(frozen=True)
class FailedMessage:
    """One given-up inbox row, without its text or address."""

    inbox_id: int
    conversation: str
    """The first characters of the conversation's pseudonym."""
    channel: str
    received_at: datetime
    processed_at: datetime | None
    attempts: int
    last_error: str


def failed_count(session: Session, now: datetime) -> int:
    """How many messages were given up within `WINDOW` before `now`."""
    return int(
        session.execute(
            select(func.count())
            .select_from(InboxMessage)
            .where(
                InboxMessage.status == INBOX_FAILED,
                InboxMessage.processed_at >= now - WINDOW,
            )
        ).scalar_one()
    )


def recent_failed(
    session: Session, now: datetime, limit: int = LIST_LIMIT
) -> list[FailedMessage]:
    """The latest messages given up within `WINDOW`, newest first."""
    rows = session.execute(
        select(
            InboxMessage.id,
            Conversation.pseudonym,
            InboxMessage.channel,
            InboxMessage.received_at,
            InboxMessage.processed_at,
            InboxMessage.attempts,
            InboxMessage.last_error,
        )
        .join(Conversation, Conversation.id == InboxMessage.conversation_id)
        .where(
            InboxMessage.status == INBOX_FAILED,
            InboxMessage.processed_at >= now - WINDOW,
        )
        .order_by(InboxMessage.processed_at.desc(), InboxMessage.id.desc())
        .limit(limit)
    ).all()
    return [
        FailedMessage(
            inbox_id=row.id,
            conversation=row.pseudonym[:12],
            channel=row.channel,
            received_at=row.received_at,
            processed_at=row.processed_at,
            attempts=row.attempts,
            last_error=row.last_error or "",
        )
        for row in rows
    ]
