"""Tickets: open, claim, assign, reply, resolve, cancel; the queue; the transcript.

Every function takes a Session and never commits: the caller decides the
transaction (e.g. resolve the ticket and enqueue `handoff_resolved` together).
Changes of status are conditional UPDATEs (`... WHERE status = 'open'`) whose
row count says who won, so twenty agents claiming one ticket at once leave it
with exactly one of them, on SQLite and PostgreSQL alike; a second ticket for
a conversation is kept out by the partial unique index. Refusals are typed
(`errors`) and raised before anything is written.

Expected waits: position x the mean handling time (assigned to resolved) of
the tickets resolved in the last 24 hours (`DEFAULT_HANDLING` when none),
divided by the agents online (at least 1).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.channels.base import TELEGRAM
from bot.db import utcnow
from bot.effects import recorded
from bot.handoff.errors import (
    ConversationNotFound,
    TicketClosed,
    TicketNotFound,
    TicketTaken,
)
from bot.handoff.hours import start_of_day_wib
from bot.handoff.models import (
    ACTIVE_STATUSES,
    MAX_NOTE_LENGTH,
    REASONS,
    TICKET_ASSIGNED,
    TICKET_CANCELLED,
    TICKET_CHANNELS,
    TICKET_OPEN,
    TICKET_RESOLVED,
    Ticket,
    TicketNote,
)
from bot.handoff.records import (
    NoteInfo,
    QueuedTicket,
    QueueStats,
    TicketInfo,
    Turn,
)
from bot.messages.events import enqueue_notification, internal_event_name
from bot.messages.models import (
    AUTHOR_AGENT,
    AUTHOR_BOT,
    Conversation,
    InboxMessage,
    OutboxMessage,
)

log = logging.getLogger(__name__)

DEFAULT_HANDLING = timedelta(minutes=6)
"""Handling time assumed when no ticket was resolved in the last 24 hours."""
HANDLING_WINDOW = timedelta(hours=24)
ONLINE_WINDOW = timedelta(minutes=15)
"""An agent who took or resolved a ticket this recently counts as online."""
AgentsOnline = Callable[[Session, datetime], int]
"""How many agents are online now (at least 1 is assumed anyway)."""

_GENERATION = re.compile(r"^\d{1,3}:")
_TICKET_TABLE = Ticket.__table__


# --- helpers -------------------------------------------------------------------


def _naive_utc(moment: datetime | None) -> datetime:
    """`moment` as stored (naive UTC), or the current time."""
    if moment is None:
        return utcnow()
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _row(session: Session, ticket_id: int) -> Any:
    """The ticket's row as it is in the database now (not the session's cache)."""
    return session.execute(
        select(_TICKET_TABLE).where(_TICKET_TABLE.c.id == ticket_id)
    ).first()


def _refuse(session: Session, ticket_id: int, agent_id: int | None = None) -> NoReturn:
    """Raise why a conditional update of the ticket changed nothing."""
    row = _row(session, ticket_id)
    if row is None:
        raise TicketNotFound(ticket_id)
    if row.status == TICKET_ASSIGNED and agent_id is not None:
        raise TicketTaken(ticket_id, int(row.agent_id))
    raise TicketClosed(ticket_id, str(row.status))


def _change(session: Session, ticket_id: int, *where: Any, **values: Any) -> bool:
    """Update the ticket if `where` holds; True when it did."""
    result = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, *where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)


def _insert_unless_active(session: Session, values: dict[str, Any]) -> bool:
    """Insert a ticket unless the conversation has an active one (or one is being
    inserted by a concurrent transaction, which this waits for):
    `INSERT ... ON CONFLICT DO NOTHING`, so the transaction is never aborted."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    if dialect not in ("postgresql", "sqlite"):
        raise ValueError(f"tickets need SQLite or PostgreSQL, not {dialect}")
    statement = module.insert(_TICKET_TABLE).values(**values).on_conflict_do_nothing()
    return bool(session.execute(statement).rowcount == 1)


# --- tickets -------------------------------------------------------------------


def get_ticket(session: Session, ticket_id: int) -> TicketInfo:
    """The ticket; TicketNotFound when there is none with that id."""
    row = _row(session, ticket_id)
    if row is None:
        raise TicketNotFound(ticket_id)
    return TicketInfo.from_row(row)


def active_ticket(session: Session, conversation_id: int) -> TicketInfo | None:
    """The conversation's open or assigned ticket, if any."""
    row = session.execute(
        select(_TICKET_TABLE).where(
            _TICKET_TABLE.c.conversation_id == conversation_id,
            _TICKET_TABLE.c.status.in_(ACTIVE_STATUSES),
        )
    ).first()
    return None if row is None else TicketInfo.from_row(row)


HANDOFF_EFFECT = "handoff"
"""The effect ledger's name for opening a ticket (`bot.handoff.desk`), keyed by
the turn's inbox id."""


def ticket_for_message(
    session: Session, conversation_id: int, inbox_id: int
) -> TicketInfo | None:
    """The active ticket the person's message `inbox_id` is routed by: None
    when there is none, or when this message's own turn opened it (Rasa or the
    gateway died after the action opened the ticket, before the answer was
    stored). That message still goes to Rasa, whose turn is replayed with the
    first one's answer ("saya sambungkan ke petugas..."); routed to the agent
    instead, it got no answer at all (seen in the soak)."""
    ticket = active_ticket(session, conversation_id)
    if ticket is None or recorded(session, str(inbox_id), HANDOFF_EFFECT) is None:
        return ticket
    return None


def active_ticket_id(conversation_id: Any) -> Any:
    """SQL: the id of the conversation's open or assigned ticket (NULL when it
    has none), to read with other columns in one statement; `conversation_id`
    is a column or a value."""
    return (
        select(_TICKET_TABLE.c.id)
        .where(
            _TICKET_TABLE.c.conversation_id == conversation_id,
            _TICKET_TABLE.c.status.in_(ACTIVE_STATUSES),
        )
        .limit(1)
        .scalar_subquery()
    )


def conversation_for_pseudonym(session: Session, pseudonym: str) -> int | None:
    """The id of the conversation Rasa knows by `pseudonym` (its sender id)."""
    found = session.execute(
        select(Conversation.id).where(Conversation.pseudonym == pseudonym)
    ).scalar_one_or_none()
    return None if found is None else int(found)


def open_ticket(
    session: Session,
    conversation_id: int,
    reason: str,
    applicant_id: int | None = None,
    now: datetime | None = None,
) -> tuple[TicketInfo, bool]:
    """Open a ticket for the conversation: (ticket, True), or (its active ticket,
    False) when it has one already, even one opened at this very moment by
    another transaction. ValueError for a reason not in `REASONS`;
    ConversationNotFound for an unknown conversation."""
    if reason not in REASONS:
        raise ValueError(f"unknown handoff reason {reason!r}")
    channel = session.execute(
        select(Conversation.channel).where(Conversation.id == conversation_id)
    ).scalar_one_or_none()
    if channel is None:
        raise ConversationNotFound(conversation_id)
    if channel not in TICKET_CHANNELS:
        raise ValueError(f"tickets are for {TICKET_CHANNELS}, not {channel!r}")
    moment = _naive_utc(now)
    for _ in range(3):  # an active ticket closed between our insert and read
        existing = active_ticket(session, conversation_id)
        if existing is not None:
            return existing, False
        created = _insert_unless_active(
            session,
            {
                "conversation_id": conversation_id,
                "channel": channel,
                "reason": reason,
                "status": TICKET_OPEN,
                "applicant_id": applicant_id,
                "created_at": moment,
            },
        )
        ticket = active_ticket(session, conversation_id)
        if ticket is not None:
            if created:
                log.info(
                    "ticket %s opened for conversation %s (%s, %s)",
                    ticket.id,
                    conversation_id,
                    reason,
                    channel,
                )
            return ticket, created
    raise RuntimeError(f"conversation {conversation_id}: no ticket after 3 tries")


def open_tickets(session: Session) -> list[TicketInfo]:
    """Every active ticket (open and assigned), oldest first."""
    rows = session.execute(
        select(_TICKET_TABLE)
        .where(_TICKET_TABLE.c.status.in_(ACTIVE_STATUSES))
        .order_by(_TICKET_TABLE.c.created_at, _TICKET_TABLE.c.id)
    ).all()
    return [TicketInfo.from_row(row) for row in rows]


def claim(
    session: Session, ticket_id: int, agent_id: int, now: datetime | None = None
) -> TicketInfo:
    """An agent takes an open ticket. Claiming one's own ticket again changes
    nothing; TicketTaken when another agent has it, TicketClosed when it is
    resolved or cancelled, TicketNotFound when there is none."""
    if _change(
        session,
        ticket_id,
        Ticket.status == TICKET_OPEN,
        status=TICKET_ASSIGNED,
        agent_id=agent_id,
        assigned_at=_naive_utc(now),
    ):
        return get_ticket(session, ticket_id)
    ticket = get_ticket(session, ticket_id)
    if ticket.status == TICKET_ASSIGNED and ticket.agent_id == agent_id:
        return ticket
    _refuse(session, ticket_id, agent_id)


def assign(
    session: Session, ticket_id: int, agent_id: int, now: datetime | None = None
) -> TicketInfo:
    """A supervisor gives an active ticket to `agent_id` (open or already
    assigned, to anyone); TicketClosed when it is resolved or cancelled."""
    if not _change(
        session,
        ticket_id,
        Ticket.status.in_(ACTIVE_STATUSES),
        status=TICKET_ASSIGNED,
        agent_id=agent_id,
        assigned_at=_naive_utc(now),
    ):
        _refuse(session, ticket_id)
    return get_ticket(session, ticket_id)


def record_reply(
    session: Session, ticket_id: int, agent_id: int, now: datetime | None = None
) -> TicketInfo:
    """An agent replied: `first_reply_at` is set the first time. An agent who
    answers a ticket nobody has claimed takes it (it leaves the queue).
    TicketClosed when the ticket is resolved or cancelled."""
    moment = _naive_utc(now)
    ticket = get_ticket(session, ticket_id)
    if not ticket.active:
        raise TicketClosed(ticket_id, ticket.status)
    _change(
        session,
        ticket_id,
        Ticket.status == TICKET_OPEN,
        status=TICKET_ASSIGNED,
        agent_id=agent_id,
        assigned_at=moment,
    )
    _change(
        session,
        ticket_id,
        Ticket.status.in_(ACTIVE_STATUSES),
        Ticket.first_reply_at.is_(None),
        first_reply_at=moment,
    )
    return get_ticket(session, ticket_id)


def resolve(
    session: Session, ticket_id: int, agent_id: int, now: datetime | None = None
) -> TicketInfo:
    """Close an active ticket as resolved (the caller also enqueues the
    `handoff_resolved` internal event). A ticket nobody claimed is credited to
    `agent_id`; TicketClosed when it is resolved or cancelled already."""
    moment = _naive_utc(now)
    if not _change(
        session,
        ticket_id,
        Ticket.status.in_(ACTIVE_STATUSES),
        status=TICKET_RESOLVED,
        resolved_at=moment,
        agent_id=func.coalesce(Ticket.agent_id, agent_id),
        assigned_at=func.coalesce(Ticket.assigned_at, moment),
    ):
        _refuse(session, ticket_id)
    return get_ticket(session, ticket_id)


def cancel(session: Session, ticket_id: int, now: datetime | None = None) -> TicketInfo:
    """The person went back to the assistant: close the active ticket as
    cancelled; TicketClosed when it is resolved or cancelled already."""
    if not _change(
        session,
        ticket_id,
        Ticket.status.in_(ACTIVE_STATUSES),
        status=TICKET_CANCELLED,
        cancelled_at=_naive_utc(now),
    ):
        _refuse(session, ticket_id)
    return get_ticket(session, ticket_id)


def record_wait_told(
    session: Session, ticket_id: int, minutes: int, now: datetime | None = None
) -> TicketInfo:
    """The person was told to expect `minutes` (the queued text): the monitor
    tells them again only when the wait grows beyond it."""
    if minutes < 0:
        raise ValueError("a wait cannot be negative")
    if not _change(
        session,
        ticket_id,
        Ticket.status.in_(ACTIVE_STATUSES),
        last_wait_told_minutes=minutes,
        last_told_at=_naive_utc(now),
    ):
        _refuse(session, ticket_id)
    return get_ticket(session, ticket_id)


def update_wait_told(
    session: Session,
    ticket_id: int,
    previous: int | None,
    minutes: int,
    now: datetime | None = None,
) -> bool:
    """Change the wait last told from `previous` to `minutes` if the ticket is
    still open and nobody changed it meanwhile; True when this call did."""
    told = (
        Ticket.last_wait_told_minutes.is_(None)
        if previous is None
        else Ticket.last_wait_told_minutes == previous
    )
    return _change(
        session,
        ticket_id,
        Ticket.status == TICKET_OPEN,
        told,
        last_wait_told_minutes=minutes,
        last_told_at=_naive_utc(now),
    )


def notify_ticket(
    session: Session,
    ticket_id: int,
    name: str,
    key: str,
    *,
    text: str = "",
    data: dict[str, Any] | None = None,
) -> bool:
    """Store the internal event `name` in the ticket's conversation (once per
    `key`; see `bot.messages.events.enqueue_notification`). The caller commits,
    then wakes the conversation worker."""
    row = session.execute(
        select(Conversation.channel, Conversation.address)
        .join(Ticket, Ticket.conversation_id == Conversation.id)
        .where(Ticket.id == ticket_id)
    ).first()
    if row is None:
        raise TicketNotFound(ticket_id)
    return enqueue_notification(
        session, row.channel, row.address, name, key, text=text, data=data
    )


# --- notes ---------------------------------------------------------------------


def add_note(
    session: Session,
    ticket_id: int,
    agent_id: int,
    text: str,
    now: datetime | None = None,
) -> NoteInfo:
    """An internal note on the ticket (any status); ValueError when empty or
    longer than `MAX_NOTE_LENGTH`."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > MAX_NOTE_LENGTH:
        raise ValueError(f"a note has 1 to {MAX_NOTE_LENGTH} characters")
    get_ticket(session, ticket_id)
    note = TicketNote(
        ticket_id=ticket_id,
        agent_id=agent_id,
        text=cleaned,
        created_at=_naive_utc(now),
    )
    session.add(note)
    session.flush()
    return NoteInfo.from_row(note)


def notes_of(session: Session, ticket_id: int) -> list[NoteInfo]:
    """The ticket's notes, oldest first."""
    rows = (
        session.execute(
            select(TicketNote)
            .where(TicketNote.ticket_id == ticket_id)
            .order_by(TicketNote.created_at, TicketNote.id)
        )
        .scalars()
        .all()
    )
    return [NoteInfo.from_row(row) for row in rows]


# --- the queue -----------------------------------------------------------------


def mean_handling_time(session: Session, now: datetime | None = None) -> timedelta:
    """Mean time from assignment to resolution of the tickets resolved in the
    last 24 hours; `DEFAULT_HANDLING` when there are none."""
    moment = _naive_utc(now)
    rows = session.execute(
        select(Ticket.created_at, Ticket.assigned_at, Ticket.resolved_at).where(
            Ticket.status == TICKET_RESOLVED,
            Ticket.resolved_at >= moment - HANDLING_WINDOW,
            Ticket.resolved_at <= moment,
        )
    ).all()
    if not rows:
        return DEFAULT_HANDLING
    spans = [
        max(row.resolved_at - (row.assigned_at or row.created_at), timedelta(0))
        for row in rows
    ]
    return sum(spans, timedelta(0)) / len(spans)


def recent_agents(session: Session, now: datetime | None = None) -> int:
    """Agents online, estimated from the tickets: those holding one, or who took
    or resolved one in the last 15 minutes; at least 1."""
    since = _naive_utc(now) - ONLINE_WINDOW
    count = session.execute(
        select(func.count(func.distinct(Ticket.agent_id))).where(
            Ticket.agent_id.is_not(None),
            or_(
                Ticket.status == TICKET_ASSIGNED,
                Ticket.assigned_at >= since,
                Ticket.resolved_at >= since,
            ),
        )
    ).scalar_one()
    return max(int(count or 0), 1)


def _wait(position: int, handling: timedelta, agents_online: int) -> timedelta:
    return position * handling / max(agents_online, 1)


def queue_position(session: Session, ticket_id: int) -> int | None:
    """1-based place among the open tickets (oldest first); None unless open."""
    ticket = get_ticket(session, ticket_id)
    if ticket.status != TICKET_OPEN:
        return None
    ahead = session.execute(
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.status == TICKET_OPEN,
            or_(
                Ticket.created_at < ticket.created_at,
                and_(Ticket.created_at == ticket.created_at, Ticket.id < ticket.id),
            ),
        )
    ).scalar_one()
    return int(ahead) + 1


def expected_wait(
    session: Session, ticket_id: int, now: datetime | None, agents_online: int
) -> timedelta | None:
    """How long the ticket will likely wait for an agent; None unless open."""
    position = queue_position(session, ticket_id)
    if position is None:
        return None
    return _wait(position, mean_handling_time(session, now), agents_online)


def open_queue(
    session: Session, now: datetime | None, agents_online: int
) -> list[QueuedTicket]:
    """The open tickets in queue order, with their positions and expected waits."""
    handling = mean_handling_time(session, now)
    rows = session.execute(
        select(_TICKET_TABLE)
        .where(_TICKET_TABLE.c.status == TICKET_OPEN)
        .order_by(_TICKET_TABLE.c.created_at, _TICKET_TABLE.c.id)
    ).all()
    return [
        QueuedTicket(
            TicketInfo.from_row(row), index, _wait(index, handling, agents_online)
        )
        for index, row in enumerate(rows, start=1)
    ]


def queue_stats(session: Session, now: datetime | None = None) -> QueueStats:
    """The queue for the supervisor: sizes, waits, active tickets by reason and
    channel, tickets resolved since midnight WIB."""
    moment = _naive_utc(now)
    active = open_tickets(session)
    waiting = [
        max(moment - t.created_at, timedelta(0))
        for t in active
        if t.status == TICKET_OPEN
    ]
    by_reason = dict.fromkeys(REASONS, 0)
    by_channel = dict.fromkeys(TICKET_CHANNELS, 0)
    for ticket in active:
        by_reason[ticket.reason] = by_reason.get(ticket.reason, 0) + 1
        by_channel[ticket.channel] = by_channel.get(ticket.channel, 0) + 1
    midnight = _naive_utc(start_of_day_wib(moment))
    resolved_today = session.execute(
        select(func.count())
        .select_from(Ticket)
        .where(Ticket.status == TICKET_RESOLVED, Ticket.resolved_at >= midnight)
    ).scalar_one()
    return QueueStats(
        open_count=sum(1 for t in active if t.status == TICKET_OPEN),
        assigned_count=sum(1 for t in active if t.status == TICKET_ASSIGNED),
        oldest_wait=max(waiting) if waiting else None,
        mean_wait=sum(waiting, timedelta(0)) / len(waiting) if waiting else None,
        by_reason=by_reason,
        by_channel=by_channel,
        resolved_today=int(resolved_today),
    )


# --- the transcript -------------------------------------------------------------


def _user_text(text: str, payload: str | None, event: Any) -> str:
    """What the person sent, as the agent reads it (no contact phone numbers)."""
    kind = event.get("type") if isinstance(event, dict) else None
    if kind == "callback":
        return f"[pilih tombol] {_GENERATION.sub('', payload or '')}".strip()
    if kind == "photo":
        return f"[foto] {text}".strip()
    if kind == "contact":
        return "[kontak dibagikan]"
    if kind == "unsupported":
        return "[pesan yang tidak bisa dibaca]"
    if text:
        return text
    return payload or ""


def body_text(channel: str, body: Any) -> str:
    """The text of a stored outbox body as the person sees it ("" for none):
    Telegram messages with their buttons' titles, SMS texts."""
    if not isinstance(body, dict):
        return ""
    kind = body.get("kind")
    text = str(body.get("text") or "")
    if channel == TELEGRAM and kind == "message":
        titles = [
            f"[{button.get('text', '')}]"
            for row in body.get("buttons") or []
            for button in row
            if isinstance(button, dict)
        ]
        return "\n".join(part for part in (text, " ".join(titles)) if part)
    return text


def _latest(
    session: Session,
    model: Any,
    columns: Sequence[Any],
    where: Any,
    limit: int,
    until: datetime | None,
) -> list[Any]:
    order = model.received_at if model is InboxMessage else model.created_at
    if until is not None:
        where = and_(where, order <= until)
    return list(
        session.execute(
            select(*columns)
            .where(where)
            .order_by(order.desc(), model.id.desc())
            .limit(limit)
        ).all()
    )


def transcript(
    session: Session,
    conversation_id: int,
    limit: int = 200,
    until: datetime | None = None,
) -> list[Turn]:
    """The conversation's last `limit` turns in time order: the person's own
    messages (internal events left out) and every stored reply (bot, agent and
    system), with the text the person saw; only those up to `until` (naive UTC)
    when given (a closed ticket's end)."""
    inbox = _latest(
        session,
        InboxMessage,
        (
            InboxMessage.id,
            InboxMessage.channel,
            InboxMessage.text,
            InboxMessage.payload,
            InboxMessage.event,
            InboxMessage.received_at,
        ),
        InboxMessage.conversation_id == conversation_id,
        limit,
        until,
    )
    outbox = _latest(
        session,
        OutboxMessage,
        (
            OutboxMessage.id,
            OutboxMessage.body,
            OutboxMessage.author,
            OutboxMessage.agent_id,
            OutboxMessage.status,
            OutboxMessage.created_at,
        ),
        OutboxMessage.conversation_id == conversation_id,
        limit,
        until,
    )
    channel = session.execute(
        select(Conversation.channel).where(Conversation.id == conversation_id)
    ).scalar_one_or_none()
    turns: list[tuple[datetime, int, int, Turn]] = []
    for row in inbox:
        if internal_event_name(row.event) is not None:
            continue
        text = _user_text(row.text or "", row.payload, row.event)
        if not text:
            continue
        turn = Turn(at=row.received_at, author="user", text=text)
        turns.append((row.received_at, 0, row.id, turn))
    for row in outbox:
        text = body_text(str(channel), row.body)
        if not text:
            continue
        turn = Turn(
            at=row.created_at,
            author=row.author or AUTHOR_BOT,
            text=text,
            agent_id=row.agent_id if row.author == AUTHOR_AGENT else None,
            delivery=row.status,
        )
        turns.append((row.created_at, 1, row.id, turn))
    turns.sort(key=lambda item: item[:3])
    return [item[3] for item in turns[-limit:]] if limit > 0 else []
