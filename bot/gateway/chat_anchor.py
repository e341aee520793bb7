"""The person's newest Telegram message id that a reply's send came after.

In a private Telegram chat message ids count up for both sides, and an inbound
message's id is given before its webhook reaches a gateway. So every message of
the bot sent after an inbound message was stored has a higher id than it: the
newest such id is where a lookup of a send in doubt may start counting
(`bot.channels.telegram_lookup`), also for the first reply of a chat, which has
no earlier reply to count from.

An inbound message counts as stored before the row's attempt when it is the
message the row answers or an earlier one of the conversation (ids of
`inbox_message` are given in insert order: no clock involved), or when it was
received more than `CLOCK_MARGIN` before the attempt started (rows that answer
no message, such as wait notices; the gateways' clocks may differ by less).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import DateTime, bindparam, func, or_, select
from sqlalchemy.orm import Session

from bot.messages.models import InboxMessage, OutboxMessage

CLOCK_MARGIN = timedelta(seconds=1)
"""An inbound message received this much before an attempt started came first,
whichever gateway process stored it."""

inbox, outbox = InboxMessage.__table__, OutboxMessage.__table__

NEWEST_INBOUND = (
    select(func.max(inbox.c.chat_message_id))
    .select_from(outbox)
    .join(inbox, inbox.c.conversation_id == outbox.c.conversation_id)
    .where(
        outbox.c.id == bindparam("outbox_id"),
        inbox.c.chat_message_id.is_not(None),
        or_(
            inbox.c.id <= outbox.c.inbox_id,
            inbox.c.received_at < bindparam("before", type_=DateTime()),
        ),
    )
)
"""The newest chat message id of the inbound messages stored before an outbox
row's attempt (built once)."""


def newest_inbound_before(
    session: Session, outbox_id: int, started: datetime
) -> int | None:
    """The highest chat message id of the person's messages stored before the
    attempt of outbox row `outbox_id` that started at `started` (None: none)."""
    found = session.execute(
        NEWEST_INBOUND, {"outbox_id": outbox_id, "before": started - CLOCK_MARGIN}
    ).scalar_one_or_none()
    return None if found is None else int(found)
