"""The conversation worker: hand stored inbound messages to Rasa, one at a time
per conversation, in order.

A claim loop (`bot.loops.ClaimLoop`) that takes conversations with pending rows
(`bot.gateway.claims`: leases with fencing tokens), processes their pending rows
in id order through the turn pipeline (`bot.gateway.turn`), whose outcome, the
replies, the new conversation state and the row's "done" are committed in one
transaction that only succeeds while the lease is still ours and the row still
pending (`bot.gateway.results`; when it was the last pending row, that
transaction also releases the conversation: `TurnOutcome.IDLE`). Any other
`TurnOutcome` than `DONE` (a retry later, a wait for Rasa, a lost lease) ends
the conversation's turn: it is released and claimed again when due.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy.orm import Session

from bot.channels.base import Channel
from bot.gateway.claims import ConversationClaims
from bot.gateway.health import ActionServerHealth
from bot.gateway.options import GatewayOptions
from bot.gateway.outbox import OutboxSender
from bot.gateway.outcome import Held, PendingMessage, TurnOutcome
from bot.gateway.rasa_client import RasaClient
from bot.gateway.results import Results
from bot.gateway.turn import TurnPipeline
from bot.group_commit import GroupCommit
from bot.loops import ClaimLoop, in_thread


class ConversationWorker(ClaimLoop[Held]):
    """Claims conversations with pending inbox rows and processes them."""

    name = "worker"
    look_after_each_task = False  # a conversation is released with no row pending

    def __init__(
        self,
        sessions: Callable[[], Session],
        channels: Mapping[str, Channel],
        rasa: RasaClient,
        owner: str,
        options: GatewayOptions,
        on_outbox: Callable[[], None] = lambda: None,
        actions: ActionServerHealth | None = None,
        *,
        writes: GroupCommit,
        sends: OutboxSender | None = None,
    ) -> None:
        super().__init__(
            options.worker_concurrency, options.poll_interval, options.shutdown_grace
        )
        self.claims = ConversationClaims(sessions, owner, options)
        self.results = Results(sessions, channels, self.claims, options)
        self.pipeline = TurnPipeline(
            sessions,
            channels,
            rasa,
            self.results,
            options,
            self,
            on_outbox,
            actions,
            due_now=self.claims.due_now,
            writes=writes,
            sends=sends,
        )

    @property
    def incomplete_turns(self) -> int:
        """Turns of this process in which an action failed (retried or given up)."""
        return self.pipeline.incomplete_turns

    async def claim(self, limit: int) -> list[Held]:
        """Take the lease of up to `limit` conversations that have pending rows."""
        return await in_thread(self.claims.claim, limit)

    async def handle(self, item: Held) -> None:
        """Process the claimed conversation's pending rows in order, then release
        (when no row is left, storing the last one's result or reading that
        none is left released it)."""
        released = False
        first = item.first
        try:
            while not self.stopping:
                pending: PendingMessage | None = first  # read with the claim
                first = None
                if pending is None:
                    pending = await in_thread(self.claims.next_pending, item)
                if pending is None:
                    released = True
                    break
                outcome = await self.pipeline.process(pending)
                if outcome is TurnOutcome.IDLE:
                    released = True  # with the row's result, in one transaction
                if not outcome.goes_on:
                    break
        finally:
            if not released:
                await in_thread(self.claims.release, item)
