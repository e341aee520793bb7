"""Conversation leases: claim conversations with pending inbox rows, read the
next row under the claim, and release them.

A worker claims a conversation with pending inbox rows by taking its lease with a
conditional UPDATE (only if the lease is free, expired, or held by a process whose
heartbeat is stale: `bot.leases`; the row count says who won). Each claim writes
a new fencing token, and every write guarded by the lease names it (`holds`), so
a process that was paused past its heartbeat timeout cannot commit after a
takeover. On PostgreSQL the candidates are picked with `FOR UPDATE SKIP LOCKED`,
so workers in several processes do not even wait for each other. The methods
block (run them in a thread).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from bot import leases
from bot.channels.base import InboundMessage
from bot.db import utcnow
from bot.gateway import burst
from bot.gateway.options import GatewayOptions
from bot.gateway.outcome import Held, PendingMessage
from bot.handoff.tickets import active_ticket, active_ticket_id
from bot.messages.events import internal_event_name
from bot.messages.models import INBOX_PENDING, Conversation, InboxMessage


class ConversationClaims:
    """The lease SQL of the conversation worker, for one process (`owner`)."""

    def __init__(
        self, sessions: Callable[[], Session], owner: str, options: GatewayOptions
    ) -> None:
        self._sessions = sessions
        self._owner = owner
        self._options = options
        self._tokens = leases.Tokens()

    def holds(self, conversation_id: int, token: int | None) -> Any:
        """SQL: this conversation is still leased by this claim (the fence)."""
        return and_(
            Conversation.id == conversation_id,
            Conversation.lease_owner == self._owner,
            Conversation.lease_token == token,
        )

    def claim(self, limit: int) -> list[Held]:
        """Take the lease of up to `limit` conversations that have pending rows."""
        now = utcnow()
        until = now + timedelta(seconds=self._options.lease_seconds)
        lease_free = leases.lease_free(
            Conversation.lease_owner,
            Conversation.lease_until,
            now,
            leases.stale_before(now, self._options.heartbeat_timeout),
            self._owner,
        )
        token = self._tokens.new()
        with self._sessions() as session, session.begin():
            oldest_pending = (
                select(func.min(InboxMessage.id))
                .where(
                    InboxMessage.conversation_id == Conversation.id,
                    InboxMessage.status == INBOX_PENDING,
                )
                .scalar_subquery()
            )
            candidates = (
                select(Conversation.id)
                .where(
                    Conversation.id.in_(
                        select(InboxMessage.conversation_id).where(
                            InboxMessage.status == INBOX_PENDING
                        )
                    ),
                    lease_free,
                    or_(
                        Conversation.not_before.is_(None),
                        Conversation.not_before <= now,
                    ),
                )
                .order_by(oldest_pending)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                candidates = candidates.with_for_update(
                    skip_locked=True, of=Conversation
                )
            claimed = []
            for conversation_id in session.execute(candidates).scalars().all():
                result = session.execute(
                    update(Conversation)
                    .where(Conversation.id == conversation_id, lease_free)
                    .values(
                        lease_owner=self._owner, lease_until=until, lease_token=token
                    )
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:
                    claimed.append(Held(int(conversation_id), token))
        return claimed

    def next_pending(self, held: Held) -> PendingMessage | None:
        """The claimed conversation's oldest pending row; None when the claim
        was lost, or when no row is pending: then the conversation is released
        in the same transaction."""
        conversation_id = held.conversation_id
        conversations, inbox = Conversation.__table__, InboxMessage.__table__
        with self._sessions() as session:
            conversation = session.execute(
                select(
                    conversations.c.address,
                    conversations.c.pseudonym,
                    conversations.c.simulated,
                    conversations.c.opted_out,
                    conversations.c.state,
                    active_ticket_id(conversations.c.id).label("ticket_id"),
                ).where(self.holds(conversation_id, held.token))
            ).first()
            if conversation is None:
                return None
            rows = session.execute(
                select(
                    inbox.c.id,
                    inbox.c.attempts,
                    inbox.c.channel,
                    inbox.c.provider_id,
                    inbox.c.text,
                    inbox.c.payload,
                    inbox.c.event,
                    inbox.c.user_name,
                    inbox.c.received_at,
                )
                .where(
                    inbox.c.conversation_id == conversation_id,
                    inbox.c.status == INBOX_PENDING,
                )
                .order_by(inbox.c.id)
                .limit(2)  # the next one tells whether a burst goes on
            ).all()
            if not rows:
                self._release(session, held)
                session.commit()
                return None
            messages = [
                InboundMessage(
                    channel=row.channel,
                    provider_id=row.provider_id,
                    address=conversation.address,
                    text=row.text,
                    payload=row.payload,
                    event=row.event,
                    simulated=conversation.simulated,
                    user_name=row.user_name,
                )
                for row in rows
            ]
            following = None
            if len(rows) > 1 and internal_event_name(rows[1].event) is None:
                following = messages[1]
            row = rows[0]
            return PendingMessage(
                conversation_id=conversation_id,
                inbox_id=row.id,
                attempts=row.attempts,
                pseudonym=conversation.pseudonym,
                simulated=conversation.simulated,
                opted_out=conversation.opted_out,
                state=dict(conversation.state or {}),
                message=messages[0],
                ticket=None  # one statement less for the common case: no ticket
                if conversation.ticket_id is None
                else active_ticket(session, conversation_id),
                lease_token=held.token,
                stale=burst.is_stale(
                    row.received_at, utcnow(), self._options.stale_after
                ),
                following=following,
            )

    def due_now(self, conversation_ids: list[int]) -> None:
        """Make these conversations due at once (those not leased), e.g. when
        Rasa, which they waited for, is back."""
        with self._sessions() as session, session.begin():
            session.execute(
                update(Conversation)
                .where(
                    Conversation.id.in_(conversation_ids),
                    Conversation.lease_owner.is_(None),
                    Conversation.not_before.is_not(None),
                )
                .values(not_before=None)
                .execution_options(synchronize_session=False)
            )

    def release(self, held: Held) -> None:
        """Give the conversation back (only while this claim holds it)."""
        with self._sessions() as session, session.begin():
            self._release(session, held)

    def _release(self, session: Session, held: Held) -> None:
        session.execute(
            update(Conversation)
            .where(self.holds(held.conversation_id, held.token))
            .values(lease_owner=None, lease_until=None, lease_token=None)
            .execution_options(synchronize_session=False)
        )
