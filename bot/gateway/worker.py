"""Hand stored inbound messages to Rasa, one at a time per conversation, in order.

A worker claims a conversation with pending inbox rows by taking its lease with a
conditional UPDATE (only if the lease is free or expired; the row count says who
won). On PostgreSQL the candidates are picked with `FOR UPDATE SKIP LOCKED`, so
workers in several processes do not even wait for each other. The lease holder then
processes the conversation's pending rows in id order; the replies, the new
conversation state and the row's "done" are committed in one transaction, which
only succeeds while the lease is still ours and the row still pending. When Rasa is
down the row stays pending and the conversation waits (`not_before`, exponential
backoff), so no later message of it overtakes the earlier one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from bot.channels.base import Channel, InboundMessage, Interpretation
from bot.db import utcnow
from bot.gateway.models import (
    INBOX_DONE,
    INBOX_FAILED,
    INBOX_PENDING,
    OUTBOX_PENDING,
    Conversation,
    InboxMessage,
    OutboxMessage,
)
from bot.gateway.options import GatewayOptions, backoff
from bot.gateway.pool import ClaimLoop, describe_error, in_thread
from bot.gateway.rasa_client import RasaClient, RasaUnavailableError

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500
MAX_ERROR_ATTEMPTS = 5


@dataclass(frozen=True)
class PendingMessage:
    """The oldest pending inbox row of a claimed conversation, with its context."""

    conversation_id: int
    inbox_id: int
    attempts: int
    pseudonym: str
    simulated: bool
    opted_out: bool
    state: dict[str, Any]
    message: InboundMessage


@dataclass
class Outcome:
    """What processing one message produced, committed in one transaction."""

    state: dict[str, Any]
    opted_out: bool
    bodies: list[dict[str, Any]] = field(default_factory=list)
    exempt: int = 0
    """How many of the first bodies are sent even to an opted-out conversation."""


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]


class ConversationWorker(ClaimLoop[int]):
    """Claims conversations with pending inbox rows and processes them."""

    name = "worker"

    def __init__(
        self,
        sessions: Callable[[], Session],
        channels: Mapping[str, Channel],
        rasa: RasaClient,
        owner: str,
        options: GatewayOptions,
        on_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(
            options.worker_concurrency, options.poll_interval, options.shutdown_grace
        )
        self._sessions = sessions
        self._channels = channels
        self._rasa = rasa
        self._owner = owner
        self._options = options
        self._on_outbox = on_outbox
        self._rasa_failures = 0

    # --- claiming -------------------------------------------------------------

    async def claim(self, limit: int) -> list[int]:
        """Take the lease of up to `limit` conversations that have pending rows."""
        return await in_thread(self._claim, limit)

    def _claim(self, limit: int) -> list[int]:
        now = utcnow()
        until = now + timedelta(seconds=self._options.lease_seconds)
        lease_free = or_(
            Conversation.lease_until.is_(None), Conversation.lease_until < now
        )
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
                    .values(lease_owner=self._owner, lease_until=until)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:
                    claimed.append(int(conversation_id))
        return claimed

    # --- processing -----------------------------------------------------------

    async def handle(self, item: int) -> None:
        """Process the claimed conversation's pending rows in order, then release."""
        conversation_id = item
        try:
            while not self.stopping:
                pending = await in_thread(self._next_pending, conversation_id)
                if pending is None or not await self._process(pending):
                    break
        finally:
            await in_thread(self._release, conversation_id)

    def _next_pending(self, conversation_id: int) -> PendingMessage | None:
        with self._sessions() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None or conversation.lease_owner != self._owner:
                return None
            row = session.execute(
                select(InboxMessage)
                .where(
                    InboxMessage.conversation_id == conversation_id,
                    InboxMessage.status == INBOX_PENDING,
                )
                .order_by(InboxMessage.id)
                .limit(1)
            ).scalar_one_or_none()
            if row is None:
                return None
            return PendingMessage(
                conversation_id=conversation_id,
                inbox_id=row.id,
                attempts=row.attempts,
                pseudonym=conversation.pseudonym,
                simulated=conversation.simulated,
                opted_out=conversation.opted_out,
                state=dict(conversation.state or {}),
                message=InboundMessage(
                    channel=row.channel,
                    provider_id=row.provider_id,
                    address=conversation.address,
                    text=row.text,
                    payload=row.payload,
                    event=row.event,
                    simulated=conversation.simulated,
                    user_name=row.user_name,
                ),
            )

    async def _process(self, pending: PendingMessage) -> bool:
        """Handle one row; False when the conversation must wait."""
        ids = (pending.conversation_id, pending.inbox_id)
        try:
            outcome = await self._turn(pending)
        except RasaUnavailableError as exc:
            await self._postpone(pending, str(exc))
            return False
        except Exception as exc:  # Rasa refused it, or a channel bug: skip it
            log.error("conversation %s inbox %s failed: %s", *ids, describe_error(exc))
            await in_thread(self._fail, pending, _error_text(exc))
            return True
        try:
            stored = await in_thread(self._complete, pending, outcome)
        except Exception as exc:  # e.g. the database: try again later, then give up
            log.error(
                "conversation %s inbox %s not stored: %s", *ids, describe_error(exc)
            )
            if pending.attempts + 1 >= MAX_ERROR_ATTEMPTS:
                await in_thread(self._fail, pending, _error_text(exc))
                return True
            await self._postpone(pending, type(exc).__name__, rasa_down=False)
            return False
        if not stored:
            log.warning("conversation %s inbox %s: lease lost, not stored", *ids)
            return False
        log.debug(
            "conversation %s (%s) inbox %s done: %d replies",
            pending.conversation_id,
            pending.pseudonym[:12],
            pending.inbox_id,
            len(outcome.bodies),
        )
        if outcome.bodies:
            self._on_outbox()
        return True

    async def _turn(self, pending: PendingMessage) -> Outcome:
        """Interpret the message, ask Rasa if needed, render the replies."""
        channel = self._channels.get(pending.message.channel)
        if channel is None:
            raise LookupError(f"no channel {pending.message.channel!r}")
        interpretation = channel.interpret(
            pending.message, pending.state, pending.opted_out
        )
        outcome = self._local_outcome(pending, interpretation)
        if interpretation.rasa_text is None:
            return outcome
        replies = await self._rasa.send(
            pending.pseudonym,
            interpretation.rasa_text,
            self._metadata(pending, interpretation),
        )
        self._rasa_failures = 0
        self.resume()
        rendered = channel.render(replies, outcome.state)
        outcome.bodies.extend(rendered.bodies)
        outcome.state = dict(rendered.state)
        return outcome

    @staticmethod
    def _local_outcome(
        pending: PendingMessage, interpretation: Interpretation
    ) -> Outcome:
        opted_out = (
            pending.opted_out
            if interpretation.opted_out is None
            else interpretation.opted_out
        )
        bodies = list(interpretation.local_bodies)
        return Outcome(
            state=dict(interpretation.state),
            opted_out=opted_out,
            bodies=bodies,
            exempt=len(bodies) if interpretation.opted_out is True else 0,
        )

    @staticmethod
    def _metadata(
        pending: PendingMessage, interpretation: Interpretation
    ) -> dict[str, Any]:
        return {
            **interpretation.rasa_metadata,
            "channel": pending.message.channel,
            "simulated": pending.simulated,
        }

    async def _postpone(
        self, pending: PendingMessage, error: str, rasa_down: bool = True
    ) -> None:
        """Leave the row pending and let the conversation wait (exponential)."""
        attempts = pending.attempts + 1
        base, cap = self._options.rasa_backoff_base, self._options.rasa_backoff_cap
        delay = backoff(attempts, base, cap)
        if rasa_down:  # other conversations would fail too: claim less for a while
            self._rasa_failures += 1
            self.pause(backoff(self._rasa_failures, base, cap))
        log.warning(
            "conversation %s inbox %s: %s (%s), attempt %d, retry in %.1fs",
            pending.conversation_id,
            pending.inbox_id,
            "Rasa unavailable" if rasa_down else "not stored",
            error,
            attempts,
            delay,
        )
        await in_thread(self._postpone_row, pending, error, delay)

    # --- transactions -----------------------------------------------------------

    def _complete(self, pending: PendingMessage, outcome: Outcome) -> bool:
        now = utcnow()
        with self._sessions() as session:
            done = session.execute(
                update(InboxMessage)
                .where(
                    InboxMessage.id == pending.inbox_id,
                    InboxMessage.status == INBOX_PENDING,
                )
                .values(
                    status=INBOX_DONE,
                    attempts=InboxMessage.attempts + 1,
                    processed_at=now,
                    last_error=None,
                )
                .execution_options(synchronize_session=False)
            )
            kept = session.execute(
                update(Conversation)
                .where(
                    Conversation.id == pending.conversation_id,
                    Conversation.lease_owner == self._owner,
                )
                .values(
                    state=outcome.state,
                    opted_out=outcome.opted_out,
                    not_before=None,
                    lease_until=now + timedelta(seconds=self._options.lease_seconds),
                )
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1 or kept.rowcount != 1:
                session.rollback()
                return False
            session.add_all(
                OutboxMessage(
                    conversation_id=pending.conversation_id,
                    inbox_id=pending.inbox_id,
                    seq=seq,
                    body=body,
                    ignore_opt_out=seq < outcome.exempt,
                    status=OUTBOX_PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
                for seq, body in enumerate(outcome.bodies)
            )
            session.commit()
        return True

    def _fail(self, pending: PendingMessage, error: str) -> None:
        with self._sessions() as session, session.begin():
            session.execute(
                update(InboxMessage)
                .where(
                    InboxMessage.id == pending.inbox_id,
                    InboxMessage.status == INBOX_PENDING,
                )
                .values(
                    status=INBOX_FAILED,
                    attempts=InboxMessage.attempts + 1,
                    processed_at=utcnow(),
                    last_error=error[:MAX_ERROR_LENGTH],
                )
                .execution_options(synchronize_session=False)
            )

    def _postpone_row(self, pending: PendingMessage, error: str, delay: float) -> None:
        now = utcnow()
        with self._sessions() as session, session.begin():
            session.execute(
                update(InboxMessage)
                .where(
                    InboxMessage.id == pending.inbox_id,
                    InboxMessage.status == INBOX_PENDING,
                )
                .values(
                    attempts=InboxMessage.attempts + 1,
                    last_error=error[:MAX_ERROR_LENGTH],
                )
                .execution_options(synchronize_session=False)
            )
            session.execute(
                update(Conversation)
                .where(
                    Conversation.id == pending.conversation_id,
                    Conversation.lease_owner == self._owner,
                )
                .values(
                    not_before=now + timedelta(seconds=delay),
                    lease_owner=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )

    def _release(self, conversation_id: int) -> None:
        with self._sessions() as session, session.begin():
            session.execute(
                update(Conversation)
                .where(
                    Conversation.id == conversation_id,
                    Conversation.lease_owner == self._owner,
                )
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
