"""What the assistant does when it hands a conversation to a person.

Used by the Rasa actions: find the conversation behind the pseudonym, open its
ticket (or find the one already open) with the reason code and the linked
applicant, and tell the person their place in the queue and the expected wait,
or, out of hours, when an agent will reply. One transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.effects import once
from bot.handoff.hours import AgentHours
from bot.handoff.records import TicketInfo
from bot.handoff.texts import (
    out_of_hours_text,
    queued_text,
    wait_minutes,
    with_agent_text,
)
from bot.handoff.tickets import (
    HANDOFF_EFFECT,
    AgentsOnline,
    expected_wait,
    open_ticket,
    queue_position,
    recent_agents,
    record_wait_told,
)
from bot.messages.models import Conversation
from bot.registry import owner_of


@dataclass(frozen=True)
class Handoff:
    """The ticket, whether it is new, and what to tell the person."""

    ticket: TicketInfo
    created: bool
    text: str


class HandoffDesk:
    """Opens tickets for conversations the bot hands to agents."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        hours: AgentHours,
        clock: Callable[[], datetime] = utcnow,
        agents_online: AgentsOnline = recent_agents,
    ) -> None:
        """`clock` gives naive UTC, as everything stored; `agents_online` counts
        the agents who share the queue (the console's presence in production)."""
        self._sessions = sessions
        self._hours = hours
        self._clock = clock
        self._agents_online = agents_online

    def hand_off(
        self, pseudonym: str, reason: str, key: str | None = None
    ) -> Handoff | None:
        """Open (or find) the conversation's ticket; None outside the gateway.
        Once per turn `key`: a repeated turn gets the first one's text."""
        return once(
            self._sessions,
            key,
            HANDOFF_EFFECT,
            lambda session: self._hand_off(session, pseudonym, reason),
            Handoff | None,
            clock=self._clock,
        )

    def _hand_off(
        self, session: Session, pseudonym: str, reason: str
    ) -> Handoff | None:
        now = self._clock()
        row = session.execute(
            select(
                Conversation.id, Conversation.channel, Conversation.address
            ).where(Conversation.pseudonym == pseudonym)
        ).first()
        if row is None:
            return None
        owner = owner_of(session, row.channel, row.address)
        ticket, created = open_ticket(
            session,
            row.id,
            reason,
            applicant_id=owner.id if owner else None,
            now=now,
        )
        return Handoff(ticket, created, self._tell(session, ticket, now))

    def _tell(self, session: Session, ticket: TicketInfo, now: datetime) -> str:
        aware = now.replace(tzinfo=timezone.utc)
        if not self._hours.is_open(aware):
            return out_of_hours_text(self._hours, aware)
        position = queue_position(session, ticket.id)
        wait = expected_wait(session, ticket.id, now, self._agents_online(session, now))
        if position is None or wait is None:  # already with an agent
            return with_agent_text()
        record_wait_told(session, ticket.id, wait_minutes(wait), now=now)
        return queued_text(position, wait)
