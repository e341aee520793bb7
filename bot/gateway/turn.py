"""The turn pipeline: one pending inbox row from the channel to Rasa and back
into the outbox, ending in a `TurnOutcome`.

Local bodies that must go out at once (a Telegram callback answer) are stored
before the Rasa turn. Before each turn the action server's health is checked
(Rasa answers 200 with no replies when an action fails). When Rasa or the
action server is unreachable the row stays pending and the conversation waits
(`not_before`, exponential backoff), without limit and without counting an
attempt, so no later message of it overtakes the earlier one (`WAIT`); so does
a failed turn after which either does not answer a probe (`bot.gateway.outage`,
which also ends the wait as soon as both answer again). A turn that fails or
times out while both answer counts an attempt (`RETRY`); after
`max_turn_attempts` the message is marked failed and the person gets an
apology, so the conversation moves on (`DONE`). `attempts` counts only such
message-specific failures (and database errors), never waits for Rasa.

A turn in which an action failed (the action server died, timed out or raised:
Rasa still answers 200, and `bot.rasa_channel` says the turn is incomplete) is
such a failure: its partial replies are dropped, the action server's health is
checked again, and the whole turn is retried (the actions replay by the turn's
idempotency key), so the person gets one whole answer or, at the limit, the
apology. A database error that keeps the result from being stored ends the same
way after `MAX_ERROR_ATTEMPTS`. Every message given up is a failed inbox row,
counted on /healthz and listed on the console's supervisor page
(`bot.messages.failures`); `incomplete_turns` counts this process's incomplete
turns.

Messages that waited in a backlog (`bot.gateway.burst`): when a stale message
has more of the person's messages behind it, each still gets its own Rasa turn,
but their answers are held with the conversation's state and go out as one
answer with the last one's; a message repeated by the next one is superseded
(done without a turn). Held answers go out before anything else is sent to the
conversation, and when the last turn waits, is retried or given up.

Internal events go where `bot.gateway.internal` says; messages of a person
handed over to an agent where `bot.handoff.routing` says. Every outbox row
records its author.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from bot.channels.base import Channel, Interpretation, Reply
from bot.db import utcnow
from bot.gateway import burst, internal
from bot.gateway.health import ActionServerHealth
from bot.gateway.options import GatewayOptions
from bot.gateway.outage import Outage, TaskHost
from bot.gateway.outbox import OutboxSender, OutgoingMessage, lane_of
from bot.gateway.outcome import (
    Adoption,
    Outcome,
    PendingMessage,
    Stored,
    TurnOutcome,
)
from bot.gateway.rasa_client import (
    IncompleteTurnError,
    RasaClient,
    RasaRejectedError,
    RasaTurnError,
    RasaUnavailableError,
)
from bot.gateway.results import MAX_ERROR_LENGTH, Results
from bot.group_commit import GroupCommit
from bot.handoff import routing
from bot.handoff.tickets import active_ticket
from bot.loops import backoff, describe_error, in_thread
from bot.messages.events import TO_RASA, internal_event_data, internal_event_name
from bot.messages.inbox import lock_order
from bot.policy.catalogue import module_texts, say
from bot.privacy.vault import Vault

log = logging.getLogger(__name__)
__getattr__ = module_texts({"APOLOGY": "gateway.apology"})

MAX_ERROR_ATTEMPTS = 5
MAX_REMEMBERED_WAITS = 100_000
SAFE_ERRORS = (RasaUnavailableError, RasaTurnError, RasaRejectedError)


class LoopControl(TaskHost, Protocol):
    """The claim loop's pacing, as the pipeline drives it (`bot.loops.ClaimLoop`)."""

    def pause(self, seconds: float) -> None:
        """Claim nothing for `seconds`."""

    def resume(self) -> None:
        """Claim again at once."""

    def wake_in(self, seconds: float) -> None:
        """Look for work again in `seconds`."""


def error_text(exc: BaseException) -> str:
    """What is stored in `last_error`: our own errors' messages (statuses, error
    types) are safe; any other message may quote SQL parameters or the person's
    text, so only the type and where it was raised are kept."""
    if isinstance(exc, SAFE_ERRORS):
        return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
    return describe_error(exc)[:MAX_ERROR_LENGTH]


class TurnPipeline:
    """Processes one pending row at a time for the conversation worker."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        channels: Mapping[str, Channel],
        rasa: RasaClient,
        results: Results,
        options: GatewayOptions,
        loop: LoopControl,
        on_outbox: Callable[[], None] = lambda: None,
        actions: ActionServerHealth | None = None,
        due_now: Callable[[list[int]], None] = lambda ids: None,
        *,
        writes: GroupCommit,
        sends: OutboxSender | None = None,
    ) -> None:
        self._sessions = sessions
        self._sends = sends
        self.writes = writes
        self._due_now = due_now
        self._outage = Outage(rasa, actions, loop, self._back)
        self._channels = channels
        self._rasa = rasa
        self._results = results
        self._options = options
        self._loop = loop
        self._on_outbox = on_outbox
        self._actions = actions
        self._vault = Vault(sessions)
        self._rasa_failures = 0
        self.incomplete_turns = 0
        """Turns of this process in which an action failed (retried or given up)."""
        self._waits: dict[int, int] = {}
        """Conversation id -> Rasa-unavailable waits in a row (for the backoff)."""

    # --- one row ----------------------------------------------------------------

    async def process(self, pending: PendingMessage) -> TurnOutcome:
        """Handle one row: a person's message or an internal event."""
        ids = (pending.conversation_id, pending.inbox_id)
        channel = self._channels.get(pending.message.channel)
        name = internal_event_name(pending.message.event)
        if name is not None:
            return await self._internal(pending, channel, name)
        try:
            if channel is None:
                raise LookupError(f"no channel {pending.message.channel!r}")
            interpretation = channel.interpret(
                pending.message, pending.state, pending.opted_out
            )
        except Exception as exc:  # a channel bug: skip the message
            log.error("conversation %s inbox %s failed: %s", *ids, describe_error(exc))
            await in_thread(self._results.fail, pending, error_text(exc), [], 0)
            return TurnOutcome.DONE
        outcome = self._local_outcome(pending, interpretation)
        text = interpretation.rasa_text
        if text is None or not text.strip():
            return await self._store(pending, outcome)
        if pending.ticket is not None:
            routed = routing.while_handed_off(text, pending.ticket)
            if routed.text is None:
                log.debug(
                    "conversation %s inbox %s: ticket %s active, not sent to Rasa",
                    *ids,
                    pending.ticket.id,
                )
            return await self._send_routed(pending, channel, outcome, routed)
        if self._superseded(pending, channel, interpretation):
            log.debug("conversation %s inbox %s: superseded by a repeat", *ids)
            kept = Outcome(state=dict(pending.state), opted_out=pending.opted_out)
            kept.note, kept.holding = burst.SUPERSEDED, True
            return await self._store(pending, kept)
        if outcome.bodies:
            stopped = await self._enqueue_local(pending, outcome)
            if stopped is not None:
                return stopped
        return await self._turn(
            pending, channel, outcome, text, interpretation.rasa_metadata, True
        )

    async def _internal(
        self, pending: PendingMessage, channel: Channel | None, name: str
    ) -> TurnOutcome:
        """An internal event, where `bot.gateway.internal.route` sends it."""
        where = internal.route(pending, name)
        outcome = Outcome(state=dict(pending.state), opted_out=pending.opted_out)
        if where is internal.Route.DROP:
            return await self._store(pending, outcome)
        if channel is None:
            return await self._no_channel(pending)
        if where is internal.Route.RASA:
            return await self._turn(
                pending, channel, outcome, TO_RASA[name], {"internal": name}, False
            )
        text, data = pending.message.text, internal_event_data(pending.message.event)
        if where is internal.Route.QUEUE_UPDATE:
            routed = routing.queue_update(text, data, pending.ticket, pending.opted_out)
            if routed.text is None:
                log.info(
                    "conversation %s inbox %s: queue update dropped",
                    pending.conversation_id,
                    pending.inbox_id,
                )
            return await self._send_routed(pending, channel, outcome, routed)
        routed = await in_thread(self._route_agent_reply, pending, text, data)
        self._log_agent_reply(pending, routed)
        return await self._send_routed(pending, channel, outcome, routed)

    def _route_agent_reply(
        self, pending: PendingMessage, text: str, data: Mapping[str, Any]
    ) -> routing.Routed:
        with self._sessions() as session:
            return routing.agent_reply(
                session, text, data, pending.ticket, pending.opted_out
            )

    @staticmethod
    def _log_agent_reply(pending: PendingMessage, routed: routing.Routed) -> None:
        ids = (pending.conversation_id, pending.inbox_id)
        if routed.text is None:
            log.warning("conversation %s inbox %s: empty agent reply dropped", *ids)
        elif routed.withheld is not None:
            log.warning(
                "conversation %s inbox %s: agent %s's reply not sent (%s)",
                *ids,
                routed.agent_id,
                routed.withheld,
            )

    async def _send_routed(
        self,
        pending: PendingMessage,
        channel: Channel,
        outcome: Outcome,
        routed: routing.Routed,
    ) -> TurnOutcome:
        """Render the handoff's text (if any) onto the outcome and store it; a
        withheld reply is stored as failed and leaves the state as it was."""
        outcome.author, outcome.agent_id = routed.author, routed.agent_id
        if routed.text is None:
            return await self._store(pending, outcome)
        if not await self._render_into(pending, channel, outcome, routed.text):
            return TurnOutcome.DONE
        outcome.cancel_ticket = routed.cancel_ticket
        if routed.withheld is not None:
            outcome.withheld = routed.withheld
            outcome.state = dict(pending.state)
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
            await in_thread(self._results.fail, pending, error_text(exc), [], 0)
            return False
        outcome.bodies.extend(rendered.bodies)
        outcome.state = dict(rendered.state)
        return True

    async def _no_channel(self, pending: PendingMessage) -> TurnOutcome:
        """The row's channel is not configured here: mark it failed."""
        log.error(
            "conversation %s inbox %s: no channel",
            pending.conversation_id,
            pending.inbox_id,
        )
        error = f"no channel {pending.message.channel!r}"
        await in_thread(self._results.fail, pending, error, [], 0)
        return TurnOutcome.DONE

    # --- the Rasa turn ----------------------------------------------------------

    async def _turn(
        self,
        pending: PendingMessage,
        channel: Channel,
        outcome: Outcome,
        text: str,
        metadata: Mapping[str, Any],
        apologise: bool,
    ) -> TurnOutcome:
        """One Rasa turn for the row, its replies rendered and stored with the
        outcome. `apologise`: tell the person when the turn is given up (they
        wrote something)."""
        ids = (pending.conversation_id, pending.inbox_id)
        try:  # Rasa's tracker store gets tokens, never personal data
            if self._vault.needs_tokens(text, metadata):
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
            return TurnOutcome.WAIT
        except RasaTurnError as exc:
            if isinstance(exc, IncompleteTurnError):
                self._turn_incomplete(pending, exc)
            down = await self._outage.down()
            if down is not None:  # not this message's fault: no attempt counted
                await self._wait_for_rasa(pending, f"{error_text(exc)}; {down}")
                return TurnOutcome.WAIT
            if pending.attempts + 1 < self._options.max_turn_attempts:
                await self._retry_later(pending, error_text(exc), "Rasa turn failed")
                return TurnOutcome.RETRY
            await self._give_up(pending, channel, outcome, exc, apologise)
            return TurnOutcome.DONE
        except RasaRejectedError as exc:
            await self._give_up(pending, channel, outcome, exc, apologise)
            return TurnOutcome.DONE
        if apologise and await self._hold(pending, channel, outcome, replies):
            return await self._store(pending, outcome)
        try:
            turns = [*burst.held_turns(outcome.state), replies]
            rendered = channel.render(
                burst.combine(turns), burst.without_held(outcome.state)
            )
        except Exception as exc:  # a channel bug: skip the message
            log.error("conversation %s inbox %s failed: %s", *ids, describe_error(exc))
            await in_thread(self._results.fail, pending, error_text(exc), [], 0)
            return TurnOutcome.DONE
        outcome.bodies.extend(rendered.bodies)
        outcome.state = dict(rendered.state)
        return await self._store(pending, outcome)

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
        self._loop.resume()
        return replies

    @staticmethod
    def _metadata(pending: PendingMessage, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **extra,
            "channel": pending.message.channel,
            "simulated": pending.simulated,
            "idempotency_key": str(pending.inbox_id),
        }

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

    # --- storing ----------------------------------------------------------------

    async def _enqueue_local(
        self, pending: PendingMessage, outcome: Outcome
    ) -> TurnOutcome | None:
        """Store the local bodies (a callback answer) before the Rasa turn, so they
        go out at once, even while Rasa is down. Idempotent: a retry of the same
        message stores nothing twice. None when stored; else how the row ended."""
        try:
            await in_thread(self._results.store_local, pending, outcome)
        except Exception as exc:
            log.error(
                "conversation %s inbox %s: local replies not stored: %s",
                pending.conversation_id,
                pending.inbox_id,
                describe_error(exc),
            )
            return await self._after_store_error(pending, exc)
        outcome.stored = len(outcome.bodies)
        self._on_outbox()
        return None

    async def _store(self, pending: PendingMessage, outcome: Outcome) -> TurnOutcome:
        """Commit the outcome. Answers still held (a burst ended without a turn)
        go out first."""
        ids = (pending.conversation_id, pending.inbox_id)
        if not outcome.holding and burst.HELD_KEY in outcome.state:
            outcome.flush = self._results.flush(pending, buttons=False)
            outcome.state = burst.without_held(outcome.state)
        adoption = self._reserve_send(pending, outcome)
        try:
            stored = await self.writes.run(
                functools.partial(
                    self._results.complete,
                    pending=pending,
                    outcome=outcome,
                    adoption=adoption,
                ),
                order=lock_order(pending.message.channel, pending.message.address),
            )
        except Exception as exc:  # e.g. the database: try again later, then give up
            log.error(
                "conversation %s inbox %s not stored: %s", *ids, describe_error(exc)
            )
            self._send_adopted(pending, outcome, adoption, stored=False)
            return await self._after_store_error(pending, exc)
        adopted = self._send_adopted(pending, outcome, adoption, bool(stored))
        if not stored:
            log.warning("conversation %s inbox %s: lease lost, not stored", *ids)
            return TurnOutcome.LOST
        log.debug(
            "conversation %s (%s) inbox %s done: %d replies",
            pending.conversation_id,
            pending.pseudonym[:12],
            pending.inbox_id,
            len(outcome.bodies),
        )
        if not adopted and (
            len(outcome.bodies) > outcome.stored or outcome.flush is not None
        ):
            self._on_outbox()
        return TurnOutcome.IDLE if stored is Stored.RELEASED else TurnOutcome.DONE

    def _reserve_send(
        self, pending: PendingMessage, outcome: Outcome
    ) -> Adoption | None:
        """A free send for the turn's first new reply, to lease it as it is
        stored and send it at once (no outbox claim); None when there is no new
        reply, no outbox to hand it to, or its lane is full."""
        if self._sends is None or len(outcome.bodies) <= outcome.stored:
            return None
        if outcome.flush is not None or outcome.withheld:
            return None
        lane = lane_of(pending.message.channel, pending.simulated)
        token = self._sends.reserve(lane)
        if token is None:
            return None
        until = utcnow() + timedelta(seconds=self._options.lease_seconds)
        return Adoption(owner=self._sends.owner, token=token, until=until)

    def _send_adopted(
        self,
        pending: PendingMessage,
        outcome: Outcome,
        adoption: Adoption | None,
        stored: bool,
    ) -> bool:
        """Send the reply leased with the turn's result; give the reserved send
        back when none was leased. Whether one was."""
        if adoption is None or self._sends is None:
            return False
        lane = lane_of(pending.message.channel, pending.simulated)
        if not stored or adoption.outbox_id is None:
            self._sends.unreserve(lane)
            return False
        assert adoption.started_at is not None  # set with outbox_id
        self._sends.adopt(
            OutgoingMessage(
                outbox_id=adoption.outbox_id,
                conversation_id=pending.conversation_id,
                channel=pending.message.channel,
                address=pending.message.address,
                simulated=pending.simulated,
                body=outcome.bodies[adoption.seq],
                attempts=0,
                send_started_at=adoption.started_at,
                lease_token=adoption.token,
            ),
            more=adoption.seq + 1 < len(outcome.bodies),
        )
        return True

    async def _after_store_error(
        self, pending: PendingMessage, exc: Exception
    ) -> TurnOutcome:
        """A database error: retry the message later, or give it up at the limit
        (with the apology when the person wrote it)."""
        if pending.attempts + 1 >= MAX_ERROR_ATTEMPTS:
            channel = self._channels.get(pending.message.channel)
            person = internal_event_name(pending.message.event) is None
            if channel is None:
                await in_thread(self._results.fail, pending, error_text(exc), [], 0)
                return TurnOutcome.DONE
            outcome = Outcome(state=dict(pending.state), opted_out=pending.opted_out)
            await self._give_up(pending, channel, outcome, exc, person)
            return TurnOutcome.DONE
        await self._retry_later(pending, error_text(exc), "not stored")
        return TurnOutcome.RETRY

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
        self._loop.pause(backoff(self._rasa_failures, base, cap))
        self._outage.watch()
        log.warning(
            "conversation %s inbox %s: Rasa unavailable (%s), wait %d, retry in %.1fs",
            pending.conversation_id,
            pending.inbox_id,
            error,
            waits,
            delay,
        )
        await in_thread(self._results.postpone, pending, error, delay, False)
        self._loop.wake_in(delay)

    async def _back(self) -> None:
        """Rasa and the action server answer again (`bot.gateway.outage`): the
        conversations that waited for them are due now, the loop claims again."""
        waited = list(self._waits)
        self._waits.clear()
        self._rasa_failures = 0
        if waited:
            await in_thread(self._due_now, waited)
        self._loop.resume()
        self._loop.wake_in(0.0)

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
        await in_thread(self._results.postpone, pending, error, delay, True)
        self._loop.wake_in(delay)

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
            error_text(exc),
        )
        apology: list[dict[str, Any]] = []
        try:  # the state stays as it was: the person may simply try again
            if apologise:
                apology = channel.render(
                    [Reply(text=say("gateway.apology"))], dict(pending.state)
                ).bodies
        except Exception as render_error:
            log.error("apology not rendered: %s", describe_error(render_error))
            apology = []
        await in_thread(
            self._results.fail, pending, error_text(exc), apology, outcome.stored
        )
        if apology:
            self._on_outbox()

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
