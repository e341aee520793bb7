"""Tell a person, once per backlog episode, that their messages wait.

Two notices, both stored straight in the outbox (no Rasa turn; author "system";
no inbox id), rendered by the conversation's channel without changing its state
(a menu the person may still answer stays valid). Neither goes to an opted-out
conversation; the wait notice also not to one with an agent's active ticket
(the agents' queue tells its own waits).

- **Wait** (`wait_text`): when a person's messages are expected to wait at least
  `notice_wait` seconds. The worker takes conversations in the order of their
  oldest waiting message and answers all of a conversation's messages once it
  holds it, so a conversation's expected wait is (the waiting rows of the
  conversations before it + its own) / the measured rate
  (`bot.gateway.backlog`). In a stall (rate 0) the wait is unknown: whoever has
  already waited `notice_wait` is told, without a figure.
- **Overflow** (`gateway.overflow` in the catalogue): a message was skipped at
  intake because the person already had `max_pending_per_conversation` messages waiting.

Once per episode: `conversation.wait_notice_upto` (`overflow_notice_upto`) holds
the last inbox id the notice covered; the next notice of that kind goes only
once all of those are answered (the oldest waiting id is above it). The
conditional UPDATE that moves it decides which gateway process tells the person;
the notice is stored in the same transaction.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from bot.channels.base import Channel, Reply
from bot.db import utcnow
from bot.handoff.models import ACTIVE_STATUSES, Ticket
from bot.messages.events import PROVIDER_PREFIX
from bot.messages.models import (
    AUTHOR_SYSTEM,
    INBOX_PENDING,
    INBOX_SKIPPED,
    OUTBOX_PENDING,
    Conversation,
    InboxMessage,
    OutboxMessage,
)
from bot.policy.catalogue import module_texts, say

log = logging.getLogger(__name__)

__getattr__ = module_texts(
    {
        "WAIT_UNKNOWN_TEXT": "gateway.wait_unknown",
        "OVERFLOW_TEXT": "gateway.overflow",
    }
)


def _wait_pattern() -> re.Pattern[str]:
    """The wait notice with any figure in it."""
    figure = say("gateway.wait", wait="{wait}")
    return re.compile(
        re.escape(figure).replace(re.escape("{wait}"), r"\d+ (?:menit|jam)")
    )


def is_notice(text: str) -> bool:
    """Whether `text` is one of these notices (not an answer to a message)."""
    text = text.strip()
    fixed = (say("gateway.wait_unknown"), say("gateway.overflow"))
    return text in fixed or bool(_wait_pattern().fullmatch(text))


MAX_MINUTES = 90
"""Waits up to this many minutes are said in minutes, longer ones in hours."""
MAX_HOURS = 24
"""Longer waits get no figure."""
MAX_NOTICES_PER_LOOK = 200
"""Notices stored in one look at most (the next look goes on)."""


def wait_text(seconds: float | None) -> str:
    """The wait notice: minutes rounded up (at least 1), hours beyond 90
    minutes, no figure when unknown or longer than a day."""
    if seconds is None:
        return say("gateway.wait_unknown")
    minutes = max(1, math.ceil(seconds / 60))
    if minutes <= MAX_MINUTES:
        return say("gateway.wait", wait=say("gateway.wait_minutes", minutes=minutes))
    hours = math.ceil(minutes / 60)
    if hours > MAX_HOURS:
        return say("gateway.wait_unknown")
    return say("gateway.wait", wait=say("gateway.wait_hours", hours=hours))


@dataclass(frozen=True)
class Due:
    """A conversation to tell: the inbox ids its notice covers, and the wait."""

    conversation_id: int
    first_id: int
    last_id: int
    wait: float | None


def due_waits(
    session: Session, rate: float, threshold: float, now: datetime
) -> list[Due]:
    """Conversations not yet told in this episode whose messages are expected to
    wait `threshold` seconds or more (rate 0: that already waited that long),
    in queue order, at most `MAX_NOTICES_PER_LOOK`."""
    person = case((InboxMessage.provider_id.like(PROVIDER_PREFIX + "%"), 0), else_=1)
    rows = session.execute(
        select(
            InboxMessage.conversation_id,
            func.min(InboxMessage.id).label("first_id"),
            func.max(InboxMessage.id).label("last_id"),
            func.count(InboxMessage.id).label("rows"),
            func.min(InboxMessage.received_at).label("since"),
            func.sum(person).label("people"),
            Conversation.wait_notice_upto,
            Conversation.opted_out,
        )
        .join(Conversation, Conversation.id == InboxMessage.conversation_id)
        .where(InboxMessage.status == INBOX_PENDING)
        .group_by(
            InboxMessage.conversation_id,
            Conversation.wait_notice_upto,
            Conversation.opted_out,
        )
        .order_by(func.min(InboxMessage.id))
    ).all()
    due: list[Due] = []
    ahead = 0
    for row in rows:
        rows_until_done = ahead + int(row.rows)
        ahead = rows_until_done
        told = row.wait_notice_upto is not None and row.wait_notice_upto >= row.first_id
        if told or row.opted_out or not row.people:
            continue
        wait: float | None = None
        if rate > 0:
            wait = rows_until_done / rate
            if wait < threshold:
                continue
        elif (now - row.since).total_seconds() < threshold:
            continue
        due.append(Due(int(row.conversation_id), row.first_id, row.last_id, wait))
        if len(due) >= MAX_NOTICES_PER_LOOK:
            break
    if not due:
        return []
    handed_over = set(
        session.execute(
            select(Ticket.conversation_id).where(
                Ticket.status.in_(ACTIVE_STATUSES),
                Ticket.conversation_id.in_([d.conversation_id for d in due]),
            )
        ).scalars()
    )
    return [d for d in due if d.conversation_id not in handed_over]


def _store_notice(
    session: Session,
    channels: Mapping[str, Channel],
    due: Due,
    column: Any,
    text: str,
    need_waiting: bool,
) -> bool:
    """Move the conversation's `column` to `due.last_id` and store the notice,
    in one transaction; False (nothing stored) when another process told the
    person first, the conversation opted out, or (`need_waiting`) nothing of
    it waits any more."""
    found = session.execute(
        select(Conversation.channel, Conversation.state).where(
            Conversation.id == due.conversation_id
        )
    ).one_or_none()
    channel = None if found is None else channels.get(found.channel)
    if found is None or channel is None:
        return False
    # rendered for the bodies only: the state (menu, pages, buttons) is kept
    bodies = channel.render([Reply(text=text)], dict(found.state or {})).bodies
    moved = session.execute(
        update(Conversation)
        .where(
            Conversation.id == due.conversation_id,
            Conversation.opted_out.is_(False),
            or_(column.is_(None), column < due.first_id),
        )
        .values({column: due.last_id})
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        session.rollback()
        return False
    if need_waiting:
        waiting = session.execute(
            select(InboxMessage.id)
            .where(
                InboxMessage.conversation_id == due.conversation_id,
                InboxMessage.status == INBOX_PENDING,
            )
            .limit(1)
        ).first()
        if waiting is None:  # answered meanwhile: a notice now would be stale
            session.rollback()
            return False
    now = utcnow()
    session.add_all(
        OutboxMessage(
            conversation_id=due.conversation_id,
            inbox_id=None,
            seq=seq,
            body=body,
            author=AUTHOR_SYSTEM,
            ignore_opt_out=False,
            status=OUTBOX_PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        for seq, body in enumerate(bodies)
    )
    session.commit()
    return True


def tell_waiting(
    session: Session,
    channels: Mapping[str, Channel],
    rate: float,
    threshold: float,
    now: datetime,
) -> int:
    """Store the wait notice for every conversation due (`due_waits`); how
    many were stored. Each in its own transaction."""
    told = 0
    for due in due_waits(session, rate, threshold, now):
        column = Conversation.wait_notice_upto
        if _store_notice(session, channels, due, column, wait_text(due.wait), True):
            told += 1
            log.info(
                "conversation %s told it waits (%s s)",
                due.conversation_id,
                "unknown" if due.wait is None else f"{due.wait:.0f}",
            )
    return told


def tell_overflowing(
    session: Session, channels: Mapping[str, Channel], after_id: int
) -> int:
    """Store the overflow notice for conversations with messages skipped after
    `after_id`, once per episode; how many were stored."""
    skipped = session.execute(
        select(InboxMessage.conversation_id, func.max(InboxMessage.id))
        .where(InboxMessage.id > after_id, InboxMessage.status == INBOX_SKIPPED)
        .group_by(InboxMessage.conversation_id)
        .order_by(func.max(InboxMessage.id))
        .limit(MAX_NOTICES_PER_LOOK)
    ).all()
    session.rollback()  # each notice in its own transaction
    told = 0
    for conversation_id, skipped_id in skipped:
        first_waiting, last = session.execute(
            select(
                func.min(case((InboxMessage.status == INBOX_PENDING, InboxMessage.id))),
                func.max(InboxMessage.id),
            ).where(InboxMessage.conversation_id == conversation_id)
        ).one()
        first = skipped_id if first_waiting is None else first_waiting
        due = Due(int(conversation_id), int(first), int(last), None)
        column = Conversation.overflow_notice_upto
        text = say("gateway.overflow")
        if _store_notice(session, channels, due, column, text, False):
            told += 1
            log.info("conversation %s told its extra messages wait", conversation_id)
    return told
