"""Store inbound messages: get or create the conversation, insert once per provider id.

A known conversation is only read, with its row locked until the caller commits
(`FOR UPDATE` on PostgreSQL; SQLite has one writer anyway): two messages of one
person stored at once by two processes then commit in the order of their ids,
so the worker, which answers pending rows in id order, never answers the later
one first because the earlier was not committed yet. Inserts use
`INSERT ... ON CONFLICT DO NOTHING` (SQLite and PostgreSQL), so a redelivered
message or two first messages racing never abort the caller's transaction. The
caller commits.

Intake is bounded per person (`max_pending`): once the conversation is locked
its waiting messages are counted, and a message beyond the cap is still
stored (never lost, visible to agents) but as "skipped": it is not handed to
Rasa, and the person is told once (`bot.gateway.wait_notice`). Under the lock,
two messages of one person arriving at once are counted one after the other.
On PostgreSQL the count and the insert are one statement after the lock
(a round trip less a message).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Session

from bot.channels.base import InboundMessage
from bot.db import on_postgresql, utcnow
from bot.direct_sql import DirectStatement, typed_parameter
from bot.insert_ignoring import OnConflictDoNothing, insert_ignoring_conflict
from bot.messages.models import (
    INBOX_PENDING,
    INBOX_SKIPPED,
    Conversation,
    InboxMessage,
)
from bot.messages.pseudonym import pseudonym


def lock_order(channel: str, address: str) -> str:
    """Where a write that locks this conversation's row goes in a group commit
    (`bot.group_commit`): every process locks conversations in this order."""
    return f"conversation {channel} {address}"


_FIND_CONVERSATION = DirectStatement(
    select(Conversation.__table__.c.id)
    .where(
        Conversation.__table__.c.channel == bindparam("channel"),
        Conversation.__table__.c.address == bindparam("address"),
    )
    .with_for_update()
)
"""The conversation of (channel, address), its row locked."""


_COUNT_WAITING = DirectStatement(
    select(func.count(InboxMessage.__table__.c.id)).where(
        InboxMessage.__table__.c.conversation_id == bindparam("conversation_id"),
        InboxMessage.__table__.c.status == INBOX_PENDING,
    )
)
"""How many messages of the conversation wait."""


SKIPPED_NOTE = ("skipped: ", " messages were waiting")
"""A skipped message's `last_error`, before and after the count."""

_inbox = InboxMessage.__table__
_STORED_COLUMNS = (
    "channel",
    "provider_id",
    "conversation_id",
    "text",
    "payload",
    "event",
    "user_name",
    "chat_message_id",
)
"""The message's own columns, given as parameters of the same names."""


def _count_and_insert() -> Any:
    """PostgreSQL: the conversation's waiting messages counted and the message
    inserted (skipped when `max_pending` wait) in one statement, its data-
    modifying WITH query: the count reads what was committed before the
    statement began, after the conversation's lock was taken, as the count of
    its own did."""
    waiting = (
        select(func.count(_inbox.c.id).label("n"))
        .where(
            _inbox.c.conversation_id == bindparam("conversation_id"),
            _inbox.c.status == INBOX_PENDING,
        )
        .cte("waiting")
    )
    skipped = waiting.c.n >= bindparam("max_pending", type_=Integer())
    now = typed_parameter("now", DateTime())
    note = literal(SKIPPED_NOTE[0]) + cast(waiting.c.n, String) + SKIPPED_NOTE[1]
    columns = {
        **{
            name: typed_parameter(name, _inbox.c[name].type) for name in _STORED_COLUMNS
        },
        "status": case((skipped, INBOX_SKIPPED), else_=INBOX_PENDING),
        "attempts": literal(0),
        "received_at": now,
        "processed_at": case((skipped, now), else_=None),
        "last_error": case((skipped, note), else_=None),
    }
    stored = insert(_inbox).from_select(
        list(columns), select(*columns.values()).select_from(waiting)
    )
    stored._post_values_clause = OnConflictDoNothing()  # as insert_ignoring does
    inserted = stored.returning(_inbox.c.id).cte("inserted")
    return select(exists(inserted.select()).label("stored"))


_COUNT_AND_INSERT = DirectStatement(_count_and_insert())


def _find_conversation(session: Session, channel: str, address: str) -> int | None:
    found = _FIND_CONVERSATION.execute(
        session, {"channel": channel, "address": address}
    ).scalar_one_or_none()
    return None if found is None else int(found)


def _lock_counting_waiting(
    session: Session, channel: str, address: str
) -> tuple[int, int] | None:
    """The conversation's id and how many of its messages wait, its row locked
    until the commit (None when there is no such conversation). The count is a
    statement of its own, after the lock: on PostgreSQL a statement that waited
    for a lock still reads what was committed when it began, so counting in the
    locking statement would miss the message whose commit it waited for."""
    found = _find_conversation(session, channel, address)
    if found is None:
        return None
    waiting = _COUNT_WAITING.execute(session, {"conversation_id": found}).scalar_one()
    return found, int(waiting)


def conversation_id(
    session: Session, channel: str, address: str, key: str, simulated: bool = False
) -> int:
    """The id of the conversation with this address, created if it is new.

    A known address costs one read (locking the row until the commit); only a
    new one is inserted (ignoring the
    conflict when another request created it meanwhile) and read again.
    """
    found = _find_conversation(session, channel, address)
    if found is not None:
        return found
    now = utcnow()
    insert_ignoring_conflict(
        session,
        Conversation.__table__,
        {
            "channel": channel,
            "address": address,
            "pseudonym": pseudonym(key, channel, address),
            "simulated": simulated,
            "opted_out": False,
            "state": {},
            "created_at": now,
            "updated_at": now,
        },
    )
    found = _find_conversation(session, channel, address)
    if found is None:  # pragma: no cover - the insert or the other one committed
        raise LookupError("the conversation vanished while it was created")
    return found


def store_inbound(
    session: Session,
    message: InboundMessage,
    key: str,
    max_pending: int | None = None,
) -> bool:
    """Store `message` as pending; False (and nothing stored) when it is a duplicate.

    `key` is the pseudonym key (settings.pseudonym_key). With `max_pending`, a
    message whose conversation already has that many waiting is stored as
    skipped instead.
    """
    waiting = 0
    found = None
    if max_pending is not None:
        if on_postgresql(session):
            locked = _find_conversation(session, message.channel, message.address)
            if locked is not None:
                return _count_and_store(session, message, locked, max_pending)
        else:
            found = _lock_counting_waiting(session, message.channel, message.address)
    if found is None:
        conversation = conversation_id(
            session, message.channel, message.address, key, message.simulated
        )
    else:
        conversation, waiting = found
    skipped = max_pending is not None and waiting >= max_pending
    now = utcnow()
    return insert_ignoring_conflict(
        session,
        InboxMessage.__table__,
        {
            **_message_columns(message, conversation),
            "status": INBOX_SKIPPED if skipped else INBOX_PENDING,
            "attempts": 0,
            "received_at": now,
            "processed_at": now if skipped else None,
            "last_error": f"{SKIPPED_NOTE[0]}{waiting}{SKIPPED_NOTE[1]}"
            if skipped
            else None,
        },
    )


def _message_columns(message: InboundMessage, conversation: int) -> dict[str, Any]:
    """The values of `_STORED_COLUMNS` for `message`."""
    return {
        "channel": message.channel,
        "provider_id": message.provider_id,
        "conversation_id": conversation,
        "text": message.text,
        "payload": message.payload,
        "event": message.event,
        "user_name": message.user_name,
        "chat_message_id": message.chat_message_id,
    }


def _count_and_store(
    session: Session, message: InboundMessage, conversation: int, max_pending: int
) -> bool:
    """`store_inbound` on PostgreSQL once the conversation is locked: the
    count and the insert in one statement."""
    parameters = {
        **_message_columns(message, conversation),
        "max_pending": max_pending,
        "now": utcnow(),
    }
    return bool(_COUNT_AND_INSERT.execute(session, parameters).scalar_one())
