"""Hand stored inbound messages to Rasa, one at a time per conversation, in order.

A worker claims a conversation with pending inbox rows by taking its lease with a
conditional UPDATE (only if the lease is free, expired, or held by a process whose
heartbeat is stale: `bot.leases`; the row count says who won). Each claim writes
a new fencing token, and every write guarded by the lease names it, so a process
that was paused past its heartbeat timeout cannot commit after a takeover. On
PostgreSQL the candidates are picked with `FOR UPDATE SKIP LOCKED`, so workers in
several processes do not even wait for each other. The lease holder then
processes the conversation's pending rows in id order; the replies, the new
conversation state and the row's "done" are committed in one transaction, which
only succeeds while the lease is still ours and the row still pending.

Local bodies that must go out at once (a Telegram callback answer) are stored
before the Rasa turn. Before each turn the action server's health is checked (Rasa
answers 200 with no replies when an action fails). When Rasa or the action server
is unreachable the row stays pending and the conversation waits (`not_before`,
exponential backoff), without limit and without counting an attempt, so no later
message of it overtakes the earlier one. The same holds for a turn cut off by an
outage: when a turn fails and Rasa or the action server then does not answer a
probe, it waits the same way. A turn that fails or times out while both answer
counts an attempt; after `max_turn_attempts` the message is marked failed and the
person gets an apology, so the conversation moves on. `attempts` counts only such
message-specific failures (and database errors), never waits for Rasa.

A turn in which an action failed (the action server died, timed out or raised:
Rasa still answers 200, and `bot.rasa_channel` says the turn is incomplete) is
such a failure: its partial replies are dropped, the action server's health is
checked again, and the whole turn is retried (the actions replay by the turn's
idempotency key), so the person gets one whole answer or, at the limit, the
apology. A database error that keeps the result from being stored ends the same
way after `MAX_ERROR_ATTEMPTS`. Every message given up is a failed inbox row,
counted on /healthz and listed on the console's supervisor page
(`bot.gateway.failures`); `incomplete_turns` counts this process's incomplete
turns.

Messages that waited in a backlog (`bot.gateway.burst`): when a stale message
has more of the person's messages behind it, each still gets its own Rasa turn,
but their answers are held with the conversation's state and go out as one
answer with the last one's; a message repeated by the next one is superseded
(done without a turn). Held answers go out before anything else is sent to the
conversation, and when the last turn waits, is retried or given up.

An internal event (`bot.gateway.notify`: a row whose `event` has an "internal"
key, e.g. a NIK check finished) is not the person's text: the channel does not
interpret it, and Rasa gets the message `INTERNAL_EVENTS[name]` (an intent in
Rasa's "/intent" syntax) with `"internal": name` in the metadata; its replies
are rendered and stored as usual. Only names in `INTERNAL_EVENTS` reach Rasa;
others, and any for an opted-out conversation, are marked done untouched. A
failed internal turn is given up without an apology.

Handoff to agents (`bot.handoff`): while the conversation has an active ticket
(open or assigned) the person's messages are not sent to Rasa: the channel still
interprets them first (SMS STOP/MULAI, next page, Telegram button answers), then
they are marked done (the agent reads them in the transcript). A cancel command
("batal", "kembali ke bot", "selesai", "cancel", or the `/handoff_cancel`
button) cancels the ticket in the same transaction and gets `CANCELLED_TEXT`,
rendered by the channel; the next message reaches Rasa again. Internal events
meant for Rasa (e.g. `nik_checked`) are dropped while a ticket is active: the
bot stays quiet, and `handoff_resolved` makes it re-read the status afterwards.
Two internal events never reach Rasa: `agent_reply` (the row's text, rendered
and stored with author "agent" and the agent's id; to an opted-out number, or
when its ticket was cancelled by the person's "batal" processed before it, it
is stored as failed, never sent) and `queue_update` (author "system"; dropped
unless its ticket is still open). Every outbox row records its author.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from bot import leases
from bot.channels.base import Channel, InboundMessage, Interpretation, Reply
from bot.db import utcnow
from bot.gateway import burst
from bot.gateway.health import ActionServerHealth
from bot.gateway.inbox import insert_ignoring_conflict
from bot.gateway.models import (
    AUTHOR_AGENT,
    AUTHOR_BOT,
    AUTHOR_SYSTEM,
    INBOX_DONE,
    INBOX_FAILED,
    INBOX_PENDING,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    Conversation,
    InboxMessage,
    OutboxMessage,
)
from bot.gateway.notify import internal_event_data, internal_event_name
from bot.gateway.options import GatewayOptions, backoff
from bot.gateway.outbox import OPTED_OUT
from bot.gateway.pool import ClaimLoop, describe_error, in_thread
from bot.gateway.rasa_client import (
    IncompleteTurnError,
    RasaClient,
    RasaRejectedError,
    RasaTurnError,
    RasaUnavailableError,
)
from bot.handoff.commands import is_cancel_command
from bot.handoff.errors import HandoffError, TicketNotFound
from bot.handoff.events import AGENT_REPLY, HANDOFF_RESOLVED, QUEUE_UPDATE
from bot.handoff.models import TICKET_CANCELLED, TICKET_OPEN
from bot.handoff.records import TicketInfo
from bot.handoff.texts import CANCELLED_TEXT
from bot.handoff.tickets import active_ticket, cancel, get_ticket
from bot.privacy.vault import Vault

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500
MAX_ERROR_ATTEMPTS = 5
MAX_REMEMBERED_WAITS = 100_000
OUTAGE_PROBE_INTERVAL = 0.5
"""Seconds between probes of Rasa and the action server while they are down."""
SAFE_ERRORS = (RasaUnavailableError, RasaTurnError, RasaRejectedError)
APOLOGY = "Maaf, pesanmu belum bisa kami proses. Coba kirim lagi sebentar lagi."
INTERNAL_EVENTS: Mapping[str, str] = {
    "nik_checked": "/check_status",
    HANDOFF_RESOLVED: "/check_status",
}
"""Internal events handed to Rasa, and the message Rasa gets for each (the
action tells a NIK check's result when the metadata says "nik_checked", and
that the agent is done when it says "handoff_resolved"); others, except the
handoff's own (`OWN_EVENTS`), are dropped."""
OWN_EVENTS = frozenset({AGENT_REPLY, QUEUE_UPDATE})
"""Internal events the worker sends itself, without Rasa."""
TICKET_CANCELLED_ERROR = "ticket cancelled"
"""The outbox error of an agent's reply withheld after the person cancelled."""


@dataclass(frozen=True)
class Held:
    """A conversation this process claimed, with the claim's fencing token."""

    conversation_id: int
    token: int


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
    ticket: TicketInfo | None = None
    """The conversation's active ticket (open or assigned), if any."""
    lease_token: int | None = None
    """The fencing token of the claim this row was read under."""
    stale: bool = False
    """It waited at least `stale_after` before it was taken (`bot.gateway.burst`)."""
    following: InboundMessage | None = None
    """The person's next pending message, if that is the next row."""

    @property
    def in_burst(self) -> bool:
        """Stale, or answers of earlier turns are held: a burst goes on."""
        return self.stale or burst.HELD_KEY in self.state


@dataclass(frozen=True)
class Flush:
    """Held answers going out now: bodies stored under the last held turn's
    inbox id, and the conversation state after them."""

    inbox_id: int
    bodies: list[dict[str, Any]]
    state: dict[str, Any]


@dataclass
class Outcome:
    """What processing one message produced, committed in one transaction."""

    state: dict[str, Any]
    opted_out: bool
    bodies: list[dict[str, Any]] = field(default_factory=list)
    exempt: int = 0
    """How many of the first bodies are sent even to an opted-out conversation."""
    stored: int = 0
    """How many of the first bodies are already in the outbox (sent before the
    Rasa turn)."""
    author: str = AUTHOR_BOT
    """Who wrote the bodies (outbox `author`)."""
    agent_id: int | None = None
    withheld: str | None = None
    """Store the bodies as failed with this error (e.g. "opted out"): never to
    be sent."""
    cancel_ticket: int | None = None
    """The ticket this message cancels, in the same transaction."""
    note: str | None = None
    """Stored as the row's `last_error` (e.g. `burst.SUPERSEDED`)."""
    holding: bool = False
    """The state holds answers on purpose (a burst goes on): no flush."""
    flush: Flush | None = None
    """Held answers stored before the bodies, in the same transaction."""


def _error_text(exc: BaseException) -> str:
    """What is stored in `last_error`: our own errors' messages (statuses, error
    types) are safe; any other message may quote SQL parameters or the person's
    text, so only the type and where it was raised are kept."""
    if isinstance(exc, SAFE_ERRORS):
        return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
    return describe_error(exc)[:MAX_ERROR_LENGTH]


def _outbox_values(
    pending: PendingMessage,
    seq: int,
    body: dict[str, Any],
    ignore_opt_out: bool,
    now: datetime,
    outcome: Outcome | None = None,
) -> dict[str, Any]:
    """An outbox row's values; `outcome` gives its author (default: the bot)."""
    values = {
        "conversation_id": pending.conversation_id,
        "inbox_id": pending.inbox_id,
        "seq": seq,
        "body": body,
        "author": AUTHOR_BOT if outcome is None else outcome.author,
        "agent_id": None if outcome is None else outcome.agent_id,
        "ignore_opt_out": ignore_opt_out,
        "status": OUTBOX_PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    if outcome is not None and outcome.withheld:
        values.update(status=OUTBOX_FAILED, last_error=outcome.withheld)
    return values


def _agent_id(data: Mapping[str, Any]) -> int | None:
    """The agent's id from an `agent_reply` event's data (None when missing)."""
    value = data.get("agent_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ConversationWorker(ClaimLoop[Held]):
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
        actions: ActionServerHealth | None = None,
    ) -> None:
        super().__init__(
            options.worker_concurrency, options.poll_interval, options.shutdown_grace
        )
        self._sessions = sessions
        self._channels = channels
        self._rasa = rasa
        self._actions = actions
        self._owner = owner
        self._options = options
        self._on_outbox = on_outbox
        self._vault = Vault(sessions)
        self._tokens = leases.Tokens()
        self._rasa_failures = 0
        self.incomplete_turns = 0
        """Turns of this process in which an action failed (retried or given up)."""
        self._waits: dict[int, int] = {}
        """Conversation id -> Rasa-unavailable waits in a row (for the backoff)."""
        self._watcher: asyncio.Task[None] | None = None

    # --- claiming -------------------------------------------------------------

    async def claim(self, limit: int) -> list[Held]:
        """Take the lease of up to `limit` conversations that have pending rows."""
        return await in_thread(self._claim, limit)

    def _holds(self, conversation_id: int, token: int | None) -> Any:
        """SQL: this conversation is still leased by this claim (the fence)."""
        return and_(
            Conversation.id == conversation_id,
            Conversation.lease_owner == self._owner,
            Conversation.lease_token == token,
        )

    def _claim(self, limit: int) -> list[Held]:
        now = utcnow()
        until = now + timedelta(seconds=self._options.lease_seconds)
        lease_free = leases.lease_free(
            Conversation.lease_owner,
            Conversation.lease_until,
            now,
            leases.stale_before(now, self._options.heartbeat_timeout),
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

    # --- processing -----------------------------------------------------------

    async def handle(self, item: Held) -> None:
        """Process the claimed conversation's pending rows in order, then release."""
        try:
            while not self.stopping:
                pending = await in_thread(self._next_pending, item)
                if pending is None or not await self._process(pending):
                    break
        finally:
            await in_thread(self._release, item)

    def _next_pending(self, held: Held) -> PendingMessage | None:
        conversation_id = held.conversation_id
        with self._sessions() as session:
            conversation = session.get(Conversation, conversation_id)
            if (
                conversation is None
                or conversation.lease_owner != self._owner
                or conversation.lease_token != held.token
            ):
                return None
            rows = (
                session.execute(
                    select(InboxMessage)
                    .where(
                        InboxMessage.conversation_id == conversation_id,
                        InboxMessage.status == INBOX_PENDING,
                    )
                    .order_by(InboxMessage.id)
                    .limit(2)  # the next one tells whether a burst goes on
                )
                .scalars()
                .all()
            )
            if not rows:
                return None
            row = rows[0]
            following = None
            if len(rows) > 1 and internal_event_name(rows[1].event) is None:
                following = InboundMessage(
                    channel=rows[1].channel,
                    provider_id=rows[1].provider_id,
                    address=conversation.address,
                    text=rows[1].text,
                    payload=rows[1].payload,
                    event=rows[1].event,
                    simulated=conversation.simulated,
                    user_name=rows[1].user_name,
                )
            ticket = active_ticket(session, conversation_id)
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
                ticket=ticket,
                lease_token=held.token,
                stale=burst.is_stale(
                    row.received_at, utcnow(), self._options.stale_after
                ),
                following=following,
            )

    async def _process(self, pending: PendingMessage) -> bool:
        """Handle one row; False when the conversation must wait."""
        ids = (pending.conversation_id, pending.inbox_id)
        channel = self._channels.get(pending.message.channel)
        internal = internal_event_name(pending.message.event)
        if internal is not None:
            return await self._process_internal(pending, channel, internal)
        try:
            if channel is None:
                raise LookupError(f"no channel {pending.message.channel!r}")
            interpretation = channel.interpret(
                pending.message, pending.state, pending.opted_out
            )
        except Exception as exc:  # a channel bug: skip the message
            log.error("conversation %s inbox %s failed: %s", *ids, describe_error(exc))
            await in_thread(self._fail, pending, _error_text(exc), [], 0)
            return True
        outcome = self._local_outcome(pending, interpretation)
        text = interpretation.rasa_text
        if text is None or not text.strip():
            return await self._store(pending, outcome)
        if pending.ticket is not None:
            return await self._while_handed_off(
                pending, channel, outcome, text, pending.ticket
            )
        if self._superseded(pending, channel, interpretation):
            log.debug("conversation %s inbox %s: superseded by a repeat", *ids)
            kept = Outcome(state=dict(pending.state), opted_out=pending.opted_out)
            kept.note, kept.holding = burst.SUPERSEDED, True
            return await self._store(pending, kept)
        if outcome.bodies and not await self._enqueue_local(pending, outcome):
            return False
        return await self._turn(
            pending, channel, outcome, text, interpretation.rasa_metadata, True
        )

    async def _while_handed_off(
        self,
        pending: PendingMessage,
        channel: Channel,
        outcome: Outcome,
        text: str,
        ticket: TicketInfo,
    ) -> bool:
        """A message while the conversation has an active ticket: not for Rasa
        (marked done, the agent reads it), unless it cancels the ticket, which
        is confirmed with `CANCELLED_TEXT`; False to wait."""
        if not is_cancel_command(text):
            log.debug(
                "conversation %s inbox %s: ticket %s active, not sent to Rasa",
                pending.conversation_id,
                pending.inbox_id,
                ticket.id,
            )
            return await self._store(pending, outcome)
        if not await self._render_into(pending, channel, outcome, CANCELLED_TEXT):
            return True
        outcome.author = AUTHOR_SYSTEM
        outcome.cancel_ticket = ticket.id
        return await self._store(pending, outcome)

    async def _render_into(
        self, pending: PendingMessage, channel: Channel, outcome: Outcome, text: str
    ) -> bool:
        """Render `text` with the channel onto the outcome's bodies and state;
        False (and the row failed) when the channel cannot."""
        try:
            rendered = channel.render([Reply(text=text)], outcome.state)
        except Exception as exc:  # a channel bug: skip the message
            log.error(
                "conversation %s inbox %s failed: %s",
                pending.conversation_id,
                pending.inbox_id,
                describe_error(exc),
            )
            await in_thread(self._fail, pending, _error_text(exc), [], 0)
            return False
        outcome.bodies.extend(rendered.bodies)
        outcome.state = dict(rendered.state)
        return True

    async def _agent_reply(self, pending: PendingMessage, channel: Channel) -> bool:
        """An agent's reply (the row's text): rendered by the channel and stored
        with author "agent"; to an opted-out conversation, or for a ticket the
        person cancelled meanwhile, it is stored as failed and never sent. No
        Rasa. False to wait."""
        ids = (pending.conversation_id, pending.inbox_id)
        data = internal_event_data(pending.message.event)
        outcome = Outcome(
            state=dict(pending.state),
            opted_out=pending.opted_out,
            author=AUTHOR_AGENT,
            agent_id=_agent_id(data),
        )
        text = pending.message.text.strip()
        if not text:
            log.warning("conversation %s inbox %s: empty agent reply dropped", *ids)
            return await self._store(pending, outcome)
        if not await self._render_into(pending, channel, outcome, text):
            return True
        if pending.opted_out:
            log.warning(
                "conversation %s inbox %s: agent %s's reply not sent (opted out)",
                *ids,
                outcome.agent_id,
            )
            outcome.withheld = OPTED_OUT
            outcome.state = dict(pending.state)
        elif await self._ticket_cancelled(pending, data.get("ticket_id")):
            log.warning(
                "conversation %s inbox %s: agent %s's reply not sent (%s)",
                *ids,
                outcome.agent_id,
                TICKET_CANCELLED_ERROR,
            )
            outcome.withheld = TICKET_CANCELLED_ERROR
            outcome.state = dict(pending.state)
        return await self._store(pending, outcome)

    async def _ticket_cancelled(self, pending: PendingMessage, ticket_id: Any) -> bool:
        """Whether the reply's ticket was cancelled: the person's "batal" was
        stored before the reply and processed first. A resolved ticket is not:
        the agent's last reply before resolving still goes out."""
        if not isinstance(ticket_id, int) or isinstance(ticket_id, bool):
            return False  # a reply stored without its ticket
        if pending.ticket is not None and pending.ticket.id == ticket_id:
            return False
        return await in_thread(self._is_cancelled, ticket_id)

    def _is_cancelled(self, ticket_id: int) -> bool:
        """Whether the ticket is cancelled now (False when there is none)."""
        with self._sessions() as session:
            try:
                return get_ticket(session, ticket_id).status == TICKET_CANCELLED
            except TicketNotFound:
                return False

    async def _queue_update(self, pending: PendingMessage, channel: Channel) -> bool:
        """A queue update (the row's text) for a ticket still open: rendered and
        stored with author "system"; otherwise (taken, closed, opted out)
        dropped. No Rasa. False to wait."""
        ids = (pending.conversation_id, pending.inbox_id)
        outcome = Outcome(
            state=dict(pending.state),
            opted_out=pending.opted_out,
            author=AUTHOR_SYSTEM,
        )
        wanted = internal_event_data(pending.message.event).get("ticket_id")
        ticket = pending.ticket
        text = pending.message.text.strip()
        if (
            ticket is None
            or ticket.status != TICKET_OPEN
            or (wanted is not None and wanted != ticket.id)
            or pending.opted_out
            or not text
        ):
            log.info("conversation %s inbox %s: queue update dropped", *ids)
            return await self._store(pending, outcome)
        if not await self._render_into(pending, channel, outcome, text):
            return True
        return await self._store(pending, outcome)

    async def _process_internal(
        self, pending: PendingMessage, channel: Channel | None, name: str
    ) -> bool:
        """Hand an internal event to Rasa as its `INTERNAL_EVENTS` message, send
        an agent's reply or a queue update, or mark it done untouched (unknown
        name, opted-out conversation, a ticket active); False to wait."""
        ids = (pending.conversation_id, pending.inbox_id)
        outcome = Outcome(state=dict(pending.state), opted_out=pending.opted_out)
        if name in OWN_EVENTS:
            if channel is None:
                return await self._no_channel(pending)
            if name == AGENT_REPLY:
                return await self._agent_reply(pending, channel)
            return await self._queue_update(pending, channel)
        if name in INTERNAL_EVENTS and pending.ticket is not None:
            log.info(
                "conversation %s inbox %s: internal event %r dropped (ticket %s)",
                *ids,
                name,
                pending.ticket.id,
            )
            return await self._store(pending, outcome)
        if name not in INTERNAL_EVENTS or pending.opted_out:
            why = "opted out" if name in INTERNAL_EVENTS else "unknown event"
            log.warning(
                "conversation %s inbox %s: internal event %r not sent to Rasa (%s)",
                *ids,
                name[:64],
                why,
            )
            return await self._store(pending, outcome)
        if channel is None:
            return await self._no_channel(pending)
        return await self._turn(
            pending, channel, outcome, INTERNAL_EVENTS[name], {"internal": name}, False
        )

    async def _no_channel(self, pending: PendingMessage) -> bool:
        """The row's channel is not configured here: mark it failed."""
        log.error(
            "conversation %s inbox %s: no channel",
            pending.conversation_id,
            pending.inbox_id,
        )
        error = f"no channel {pending.message.channel!r}"
        await in_thread(self._fail, pending, error, [], 0)
        return True

    async def _turn(
        self,
        pending: PendingMessage,
        channel: Channel,
        outcome: Outcome,
        text: str,
        metadata: Mapping[str, Any],
        apologise: bool,
    ) -> bool:
        """One Rasa turn for the row, its replies rendered and stored with the
        outcome; False when the conversation must wait. `apologise`: tell the
        person when the turn is given up (they wrote something)."""
        ids = (pending.conversation_id, pending.inbox_id)
        try:  # Rasa's tracker store gets tokens, never personal data
            text, metadata = await in_thread(
                self._vault.tokenize_turn, pending.conversation_id, text, metadata
            )
        except Exception as exc:
            log.error(
                "conversation %s inbox %s not tokenized: %s", *ids, describe_error(exc)
            )
            return await self._after_store_error(pending, exc)
        try:
            replies = await self._ask_rasa(pending, text, metadata)
        except RasaUnavailableError as exc:
            await self._wait_for_rasa(pending, str(exc))
            return False
        except RasaTurnError as exc:
            if isinstance(exc, IncompleteTurnError):
                self._turn_incomplete(pending, exc)
            outage = await self._outage()
            if outage is not None:  # not this message's fault: no attempt counted
                await self._wait_for_rasa(pending, f"{_error_text(exc)}; {outage}")
                return False
            if pending.attempts + 1 < self._options.max_turn_attempts:
                await self._retry_later(pending, _error_text(exc), "Rasa turn failed")
                return False
            await self._give_up(pending, channel, outcome, exc, apologise)
            return True
        except RasaRejectedError as exc:
            await self._give_up(pending, channel, outcome, exc, apologise)
            return True
        if apologise and await self._hold(pending, channel, outcome, replies):
            return await self._store(pending, outcome)
        try:
            turns = [*burst.held_turns(outcome.state), replies]
            rendered = channel.render(
                burst.combine(turns), burst.without_held(outcome.state)
            )
        except Exception as exc:  # a channel bug: skip the message
            log.error("conversation %s inbox %s failed: %s", *ids, describe_error(exc))
            await in_thread(self._fail, pending, _error_text(exc), [], 0)
            return True
        outcome.bodies.extend(rendered.bodies)
        outcome.state = dict(rendered.state)
        return await self._store(pending, outcome)

    # --- stale bursts (bot.gateway.burst) ---------------------------------------

    def _superseded(
        self, pending: PendingMessage, channel: Channel, interpretation: Interpretation
    ) -> bool:
        """In a burst, a plain message that the next one repeats: no turn."""
        following = pending.following
        if not pending.in_burst or following is None:
            return False
        if interpretation.local_bodies or interpretation.opted_out is not None:
            return False
        mine = burst.plain_turn(channel, pending.message, pending.state, False)
        if pending.opted_out or mine is None:
            return False
        theirs = burst.plain_turn(channel, following, pending.state, False)
        return theirs is not None and burst.same_words(mine, theirs)

    async def _hold(
        self,
        pending: PendingMessage,
        channel: Channel,
        outcome: Outcome,
        replies: list[Reply],
    ) -> bool:
        """Hold this turn's answers in the outcome's state when a burst goes on
        (the next message is a plain turn too); False to answer now (also when
        that cannot be decided: a channel or database error)."""
        following = pending.following
        if not pending.in_burst or following is None or outcome.opted_out:
            return False
        turns = [*burst.held_turns(outcome.state), replies]
        if len(turns) >= burst.MAX_BURST or outcome.cancel_ticket is not None:
            return False
        try:
            rendered = channel.render(
                burst.combine(turns), burst.without_held(outcome.state)
            )
            state = burst.with_held(rendered.state, turns, pending.inbox_id)
            if burst.plain_turn(channel, following, state, False) is None:
                return False
            if await in_thread(self._has_ticket, pending.conversation_id):
                return False  # this turn handed the person over: answer now
        except Exception as exc:
            log.warning(
                "conversation %s inbox %s: answered now, not held: %s",
                pending.conversation_id,
                pending.inbox_id,
                describe_error(exc),
            )
            return False
        outcome.state, outcome.holding, outcome.note = state, True, burst.HELD
        return True

    def _has_ticket(self, conversation_id: int) -> bool:
        with self._sessions() as session:
            return active_ticket(session, conversation_id) is not None

    def _flush(self, pending: PendingMessage, buttons: bool = True) -> Flush | None:
        """The held answers of the conversation as bodies to send now, or None.
        A channel that cannot render them drops them (logged)."""
        turns = burst.held_turns(pending.state)
        inbox_id = burst.held_inbox_id(pending.state)
        channel = self._channels.get(pending.message.channel)
        if not turns or inbox_id is None or channel is None:
            return None
        state = burst.without_held(pending.state)
        try:
            rendered = channel.render(burst.combine(turns, buttons), state)
        except Exception as exc:
            log.error(
                "conversation %s: held answers not rendered: %s",
                pending.conversation_id,
                describe_error(exc),
            )
            return Flush(inbox_id, [], state)
        return Flush(inbox_id, list(rendered.bodies), dict(rendered.state))

    @staticmethod
    def _store_flush(
        session: Session, pending: PendingMessage, flush: Flush, now: datetime
    ) -> None:
        """Store held answers (before anything else of this transaction)."""
        for seq, body in enumerate(flush.bodies):
            values = _outbox_values(pending, seq, body, False, now)
            values["inbox_id"] = flush.inbox_id
            session.add(OutboxMessage(**values))

    async def _ask_rasa(
        self, pending: PendingMessage, text: str, metadata: Mapping[str, Any]
    ) -> list[Reply]:
        """One Rasa turn, once the action server is known to be up."""
        if self._actions is not None:
            await self._actions.check()
        replies = await self._rasa.send(
            pending.pseudonym, text, self._metadata(pending, metadata)
        )
        self._rasa_failures = 0
        self._waits.pop(pending.conversation_id, None)
        self.resume()
        return replies

    async def _outage(self) -> str | None:
        """After a failed turn: what is down (Rasa or the action server died or
        does not answer), or None when both answer, so the turn failed on its
        own. A turn cut off by an outage is retried without counting an attempt
        (safe: the repeated turn replays by its idempotency key)."""
        if not await self._rasa.reachable():
            return "Rasa does not answer"
        if self._actions is not None:
            try:
                await self._actions.check()
            except RasaUnavailableError as exc:
                return str(exc)
        return None

    def _turn_incomplete(
        self, pending: PendingMessage, exc: IncompleteTurnError
    ) -> None:
        """An action of the turn failed: its replies are dropped (the turn is
        retried whole) and the action server is checked before the next turn."""
        self.incomplete_turns += 1
        if self._actions is not None:
            self._actions.forget()
        log.warning(
            "conversation %s inbox %s: turn incomplete, replies dropped (%s)",
            pending.conversation_id,
            pending.inbox_id,
            exc,
        )

    async def _enqueue_local(self, pending: PendingMessage, outcome: Outcome) -> bool:
        """Store the local bodies (a callback answer) before the Rasa turn, so they
        go out at once, even while Rasa is down. Idempotent: a retry of the same
        message stores nothing twice. False when the conversation must wait."""
        try:
            await in_thread(self._store_local, pending, outcome)
        except Exception as exc:
            log.error(
                "conversation %s inbox %s: local replies not stored: %s",
                pending.conversation_id,
                pending.inbox_id,
                describe_error(exc),
            )
            await self._after_store_error(pending, exc)
            return False
        outcome.stored = len(outcome.bodies)
        self._on_outbox()
        return True

    async def _store(self, pending: PendingMessage, outcome: Outcome) -> bool:
        """Commit the outcome; False when the conversation must wait. Answers
        still held (a burst ended without a turn) go out first."""
        ids = (pending.conversation_id, pending.inbox_id)
        if not outcome.holding and burst.HELD_KEY in outcome.state:
            outcome.flush = self._flush(pending, buttons=False)
            outcome.state = burst.without_held(outcome.state)
        try:
            stored = await in_thread(self._complete, pending, outcome)
        except Exception as exc:  # e.g. the database: try again later, then give up
            log.error(
                "conversation %s inbox %s not stored: %s", *ids, describe_error(exc)
            )
            return await self._after_store_error(pending, exc)
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
        if len(outcome.bodies) > outcome.stored or outcome.flush is not None:
            self._on_outbox()
        return True

    async def _after_store_error(self, pending: PendingMessage, exc: Exception) -> bool:
        """A database error: retry the message later, or give it up at the limit
        (with the apology when the person wrote it)."""
        if pending.attempts + 1 >= MAX_ERROR_ATTEMPTS:
            channel = self._channels.get(pending.message.channel)
            person = internal_event_name(pending.message.event) is None
            if channel is None:
                await in_thread(self._fail, pending, _error_text(exc), [], 0)
                return True
            outcome = Outcome(state=dict(pending.state), opted_out=pending.opted_out)
            await self._give_up(pending, channel, outcome, exc, person)
            return True
        await self._retry_later(pending, _error_text(exc), "not stored")
        return False

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
    def _metadata(pending: PendingMessage, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **extra,
            "channel": pending.message.channel,
            "simulated": pending.simulated,
            "idempotency_key": str(pending.inbox_id),
        }

    async def _wait_for_rasa(self, pending: PendingMessage, error: str) -> None:
        """Rasa or the action server is unreachable: the row stays pending without
        counting an attempt, the conversation waits (exponential backoff) and the
        worker claims nothing for a while (other conversations would fail too)."""
        base, cap = self._options.rasa_backoff_base, self._options.rasa_backoff_cap
        if len(self._waits) > MAX_REMEMBERED_WAITS:  # answered elsewhere meanwhile
            self._waits.clear()
        waits = self._waits.get(pending.conversation_id, 0) + 1
        self._waits[pending.conversation_id] = waits
        delay = backoff(waits, base, cap)
        self._rasa_failures += 1
        self.pause(backoff(self._rasa_failures, base, cap))
        self._watch_outage()
        log.warning(
            "conversation %s inbox %s: Rasa unavailable (%s), wait %d, retry in %.1fs",
            pending.conversation_id,
            pending.inbox_id,
            error,
            waits,
            delay,
        )
        await in_thread(self._postpone_row, pending, error, delay, False)
        self.wake_in(delay)

    def _watch_outage(self) -> None:
        """Probe Rasa and the action server every `OUTAGE_PROBE_INTERVAL` while
        the worker waits for them (one probe task per process)."""
        if self._watcher is not None and not self._watcher.done():
            return
        self._watcher = asyncio.create_task(self._outage_watch())
        self._tasks.add(self._watcher)
        self._watcher.add_done_callback(self._done)

    async def _outage_watch(self) -> None:
        """Once both answer: end the pause and make the conversations that
        waited for them due now, instead of at the end of their backoff."""
        while not self._stopping:
            await asyncio.sleep(OUTAGE_PROBE_INTERVAL)
            if self._actions is not None:
                self._actions.forget()
            if await self._outage() is None:
                break
        else:
            return
        waited = list(self._waits)
        self._waits.clear()
        self._rasa_failures = 0
        if waited:
            await in_thread(self._due_now, waited)
        log.info("Rasa and the action server answer again: %d waiting", len(waited))
        self.resume()
        self.notify()

    def _due_now(self, conversation_ids: list[int]) -> None:
        """The conversations that waited for Rasa are due again (not leased)."""
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

    async def _retry_later(
        self, pending: PendingMessage, error: str, what: str
    ) -> None:
        """A failure tied to this message: count an attempt, let the conversation
        wait (exponential backoff), then try the same message again."""
        attempts = pending.attempts + 1
        base, cap = self._options.rasa_backoff_base, self._options.rasa_backoff_cap
        delay = backoff(attempts, base, cap)
        log.warning(
            "conversation %s inbox %s: %s (%s), attempt %d, retry in %.1fs",
            pending.conversation_id,
            pending.inbox_id,
            what,
            error,
            attempts,
            delay,
        )
        await in_thread(self._postpone_row, pending, error, delay, True)
        self.wake_in(delay)

    async def _give_up(
        self,
        pending: PendingMessage,
        channel: Channel,
        outcome: Outcome,
        exc: Exception,
        apologise: bool = True,
    ) -> None:
        """Mark the message failed and apologise (when `apologise`: the person
        wrote it), so later messages proceed."""
        log.error(
            "conversation %s inbox %s: given up after %d attempts: %s",
            pending.conversation_id,
            pending.inbox_id,
            pending.attempts + 1,
            _error_text(exc),
        )
        apology: list[dict[str, Any]] = []
        try:  # the state stays as it was: the person may simply try again
            if apologise:
                apology = channel.render(
                    [Reply(text=APOLOGY)], dict(pending.state)
                ).bodies
        except Exception as render_error:
            log.error("apology not rendered: %s", describe_error(render_error))
            apology = []
        await in_thread(self._fail, pending, _error_text(exc), apology, outcome.stored)
        if apology:
            self._on_outbox()

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
                    last_error=outcome.note,
                )
                .execution_options(synchronize_session=False)
            )
            kept = session.execute(
                update(Conversation)
                .where(self._holds(pending.conversation_id, pending.lease_token))
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
            if outcome.cancel_ticket is not None:
                self._cancel_ticket(session, pending, outcome.cancel_ticket, now)
            if outcome.flush is not None:
                self._store_flush(session, pending, outcome.flush, now)
            session.add_all(
                OutboxMessage(
                    **_outbox_values(
                        pending, seq, body, seq < outcome.exempt, now, outcome
                    )
                )
                for seq, body in enumerate(outcome.bodies)
                if seq >= outcome.stored
            )
            session.commit()
        return True

    @staticmethod
    def _cancel_ticket(
        session: Session, pending: PendingMessage, ticket_id: int, now: datetime
    ) -> None:
        """Cancel the ticket the person asked to leave (already closed by an
        agent meanwhile: nothing to do, the confirmation still goes out)."""
        try:
            cancel(session, ticket_id, now)
        except HandoffError as exc:
            log.info(
                "conversation %s inbox %s: ticket %s not cancelled: %s",
                pending.conversation_id,
                pending.inbox_id,
                ticket_id,
                type(exc).__name__,
            )
        else:
            log.info(
                "conversation %s: ticket %s cancelled by the person",
                pending.conversation_id,
                ticket_id,
            )

    def _store_local(self, pending: PendingMessage, outcome: Outcome) -> None:
        now = utcnow()
        with self._sessions() as session, session.begin():
            for seq, body in enumerate(outcome.bodies):
                insert_ignoring_conflict(
                    session,
                    OutboxMessage.__table__,
                    _outbox_values(
                        pending, seq, body, seq < outcome.exempt, now, outcome
                    ),
                    ["inbox_id", "seq"],
                )

    def _fail(
        self,
        pending: PendingMessage,
        error: str,
        bodies: list[dict[str, Any]],
        first_seq: int,
    ) -> None:
        """Mark the row failed and store `bodies` (an apology) after `first_seq`
        and after any reply of the row stored by an earlier attempt, held answers
        before them; nothing when the lease was lost (the fence is checked
        first)."""
        now = utcnow()
        flush = self._flush(pending)
        values: dict[str, Any] = {"not_before": None}
        if flush is not None:
            values["state"] = flush.state
        with self._sessions() as session, session.begin():
            kept = session.execute(
                update(Conversation)
                .where(self._holds(pending.conversation_id, pending.lease_token))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if kept.rowcount != 1:
                log.warning(
                    "conversation %s inbox %s: lease lost, not failed",
                    pending.conversation_id,
                    pending.inbox_id,
                )
                return
            if bodies:
                last = session.execute(
                    select(func.max(OutboxMessage.seq)).where(
                        OutboxMessage.inbox_id == pending.inbox_id
                    )
                ).scalar_one_or_none()
                if last is not None:
                    first_seq = max(first_seq, int(last) + 1)
            failed = session.execute(
                update(InboxMessage)
                .where(
                    InboxMessage.id == pending.inbox_id,
                    InboxMessage.status == INBOX_PENDING,
                )
                .values(
                    status=INBOX_FAILED,
                    attempts=InboxMessage.attempts + 1,
                    processed_at=now,
                    last_error=error[:MAX_ERROR_LENGTH],
                )
                .execution_options(synchronize_session=False)
            )
            if failed.rowcount != 1:
                if flush is not None:  # keep them held: this row is not ours to end
                    session.rollback()
                return
            if flush is not None:
                self._store_flush(session, pending, flush, now)
            session.add_all(
                OutboxMessage(
                    **_outbox_values(pending, first_seq + index, body, False, now)
                )
                for index, body in enumerate(bodies)
            )

    def _postpone_row(
        self, pending: PendingMessage, error: str, delay: float, count: bool
    ) -> None:
        """Release the conversation until `delay` from now and note the error on
        the row; held answers go out now (they must not wait for this row).
        Nothing when the lease was lost (the fence is checked first)."""
        now = utcnow()
        values: dict[str, Any] = {"last_error": error[:MAX_ERROR_LENGTH]}
        if count:
            values["attempts"] = InboxMessage.attempts + 1
        flush = self._flush(pending)
        released: dict[str, Any] = {
            "not_before": now + timedelta(seconds=delay),
            "lease_owner": None,
            "lease_until": None,
            "lease_token": None,
        }
        if flush is not None:
            released["state"] = flush.state
        with self._sessions() as session, session.begin():
            kept = session.execute(
                update(Conversation)
                .where(self._holds(pending.conversation_id, pending.lease_token))
                .values(**released)
                .execution_options(synchronize_session=False)
            )
            if kept.rowcount != 1:
                return
            if flush is not None:
                self._store_flush(session, pending, flush, now)
            session.execute(
                update(InboxMessage)
                .where(
                    InboxMessage.id == pending.inbox_id,
                    InboxMessage.status == INBOX_PENDING,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def _release(self, held: Held) -> None:
        with self._sessions() as session, session.begin():
            session.execute(
                update(Conversation)
                .where(self._holds(held.conversation_id, held.token))
                .values(lease_owner=None, lease_until=None, lease_token=None)
                .execution_options(synchronize_session=False)
            )
