"""What the conversation worker passes around: a claim, the pending row it
reads, what processing the row produced, and the step after it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.channels.base import InboundMessage
from bot.gateway import burst
from bot.handoff.records import TicketInfo
from bot.messages.models import AUTHOR_BOT


class TurnOutcome(enum.Enum):
    """How processing one row ended, i.e. what the worker does next."""

    DONE = "done"
    """The row is finished (done or failed): take the conversation's next row."""
    RETRY = "retry"
    """The row failed for now and is tried again later (an attempt counted)."""
    WAIT = "wait"
    """Rasa or the action server is unreachable: the conversation waits."""
    LOST = "lost"
    """The lease was lost (another process took over): stop."""
    IDLE = "idle"
    """The row is finished and no other row of the conversation waits: its
    lease was released with it (`Stored.RELEASED`)."""

    @property
    def goes_on(self) -> bool:
        """Whether the worker goes on with the conversation's next row."""
        return self is TurnOutcome.DONE


class Stored(enum.Enum):
    """What storing a row's outcome did (`bot.gateway.results.Results.complete`)."""

    LOST = "lost"
    """Nothing: the lease was lost or the row is no longer pending."""
    KEPT = "kept"
    """Stored; more rows of the conversation wait, the lease is kept."""
    RELEASED = "released"
    """Stored; no other row waits, so the lease was released with it."""

    def __bool__(self) -> bool:
        return self is not Stored.LOST


@dataclass(frozen=True)
class Held:
    """A conversation this process claimed, with the claim's fencing token."""

    conversation_id: int
    token: int
    first: PendingMessage | None = field(default=None, compare=False, repr=False)
    """Its oldest pending row, read in the claim's own transaction (one
    transaction less per message); None: read it with `next_pending`."""


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


@dataclass
class Adoption:
    """A turn's first reply leased to this process in the transaction that
    stores it (`bot.gateway.results.Results.complete`), to be sent at once
    without a claim (`bot.gateway.outbox.OutboxSender.adopt`)."""

    owner: str
    token: int
    """The fencing token reserved for it (`OutboxSender.reserve`)."""
    until: datetime
    outbox_id: int | None = None
    """Set by the transaction when the row was leased (None: it was not, e.g.
    an earlier reply of the chat is still unsent)."""
    seq: int = 0
    """The leased row's place among the turn's replies."""
    started_at: datetime | None = None
    """The send mark stored with the lease."""
