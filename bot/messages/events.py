"""Internal events: tell a conversation that something happened outside it.

This module is the one registry of their names (`NIK_CHECKED`, `AGENT_REPLY`,
`QUEUE_UPDATE`, `HANDOFF_RESOLVED`) and of what Rasa gets for those it
answers (`TO_RASA`); every producer and consumer imports them from here.

A background job (a NIK check) that finishes stores an inbox row in the person's
existing conversation, as if they had written: `event = {"internal": name}`,
provider id `internal:<key>`. The conversation worker processes it in order with
the person's own messages (`bot.gateway.internal`: most go to Rasa as an intent;
an agent's reply or a queue update is sent as is, `bot.handoff.routing`) and
sends the replies like any others. The key makes the row once-only: storing
the same event twice (a retried transaction, a second worker) keeps one row.

An event may carry a `text` (an agent's reply, a queue update: stored as the
row's text, "" otherwise) and `data` (e.g. the agent's id: stored under
`event["data"]`).

The caller owns the transaction (nothing here commits) and wakes the worker after
its commit (`ConversationWorker.notify`), since an uncommitted row is invisible.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bot.channels.base import SMS
from bot.db import utcnow
from bot.insert_ignoring import insert_ignoring_conflict
from bot.messages.models import INBOX_PENDING, Conversation, InboxMessage
from bot.policy.validation import mask_phone

log = logging.getLogger(__name__)

NIK_CHECKED = "nik_checked"
"""A NIK check finished (`bot.verification.queue`): Rasa tells its result."""
AGENT_REPLY = "agent_reply"
"""An agent's reply (the row's text; `data={"agent_id": n, "ticket_id": t}`):
rendered and sent with author "agent", without Rasa."""
QUEUE_UPDATE = "queue_update"
"""The person's wait grew (the row's text; `data={"ticket_id": n}`): sent with
author "system" while the ticket is open, without Rasa."""
HANDOFF_RESOLVED = "handoff_resolved"
"""An agent resolved the ticket: Rasa says what is next."""
TO_RASA: Mapping[str, str] = {
    NIK_CHECKED: "/check_status",
    HANDOFF_RESOLVED: "/check_status",
}
"""Internal events handed to Rasa, and the message Rasa gets for each (the
action tells a NIK check's result when the metadata says "nik_checked", and
that the agent is done when it says "handoff_resolved")."""
HANDOFF_EVENTS = frozenset({AGENT_REPLY, QUEUE_UPDATE})
"""Internal events the handoff sends itself, without Rasa
(`bot.handoff.routing`)."""

INTERNAL_KEY = "internal"
"""The key of an inbox row's `event` that marks an internal event."""
DATA_KEY = "data"
"""The key of an internal event's `data` in the inbox row's `event`."""
PROVIDER_PREFIX = "internal:"
"""Provider ids of internal rows (no provider uses it: Telegram ids are
"<bot>:<update>", Twilio's "SM...", the simulator's "sim-...")."""
MAX_PROVIDER_ID = 128


def internal_event_name(event: object) -> str | None:
    """The name of an internal event, or None for a person's own message."""
    if not isinstance(event, dict) or INTERNAL_KEY not in event:
        return None
    return str(event[INTERNAL_KEY])


def internal_event_data(event: object) -> dict[str, Any]:
    """The `data` an internal event was stored with ({} when none)."""
    if not isinstance(event, dict):
        return {}
    data = event.get(DATA_KEY)
    return dict(data) if isinstance(data, dict) else {}


def masked_address(channel: str, address: str) -> str:
    """An address fit for logs: a masked phone number, or a chat id's last 3
    characters."""
    if channel == SMS:
        return mask_phone(address)
    return "*" * max(len(address) - 3, 0) + address[-3:]


_conversations, _inbox = Conversation.__table__, InboxMessage.__table__
CONVERSATION = select(_conversations.c.id).where(
    _conversations.c.channel == bindparam("channel"),
    _conversations.c.address == bindparam("address"),
)
STORED = select(_inbox.c.id).where(
    _inbox.c.channel == bindparam("channel"),
    _inbox.c.provider_id == bindparam("provider_id"),
)
"""Built once: every NIK check, handoff update and announcement stores one."""


def enqueue_notification(
    session: Session,
    channel: str,
    address: str,
    name: str,
    key: str,
    *,
    text: str = "",
    data: dict[str, Any] | None = None,
) -> bool:
    """Store the internal event `name` in the conversation of (channel, address);
    True when the row exists afterwards (stored now or by an earlier call with the
    same `key`), False when there is no such conversation (none is created: the
    person never wrote on that channel). `text` becomes the row's text and `data`
    (JSON-serialisable) goes under `event["data"]`. The caller commits, then
    wakes the conversation worker.
    """
    provider_id = PROVIDER_PREFIX + key
    if not name or len(provider_id) > MAX_PROVIDER_ID:
        raise ValueError("an internal event needs a name and a key of <= 119 chars")
    event: dict[str, Any] = {INTERNAL_KEY: name}
    if data:
        event[DATA_KEY] = dict(data)
    conversation_id = session.execute(
        CONVERSATION, {"channel": channel, "address": address}
    ).scalar_one_or_none()
    if conversation_id is None:
        log.info(
            "internal event %s not stored: no %s conversation with %s",
            name,
            channel,
            masked_address(channel, address),
        )
        return False
    insert_ignoring_conflict(
        session,
        InboxMessage.__table__,
        {
            "channel": channel,
            "provider_id": provider_id,
            "conversation_id": conversation_id,
            "text": text,
            "event": event,
            "status": INBOX_PENDING,
            "attempts": 0,
            "received_at": utcnow(),
        },
    )
    stored = session.execute(
        STORED, {"channel": channel, "provider_id": provider_id}
    ).scalar_one_or_none()
    return stored is not None
