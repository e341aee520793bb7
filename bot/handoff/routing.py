"""Handoff routing: what becomes of a message while a person is handed over.

The gateway's turn pipeline (`bot.gateway.turn`) asks here before Rasa; each
function returns a `Routed` (the text to render for the person, who wrote it,
whether it is withheld, the ticket to cancel) and the pipeline renders and
stores it with the message, in one transaction:

- While the conversation has an active ticket (open or assigned) the person's
  messages do not reach Rasa: they are marked done (the agent reads them in
  the transcript). A cancel command ("batal", "kembali ke bot", "selesai",
  "cancel", or the `/handoff_cancel` button) cancels the ticket in the same
  transaction (`cancel_ticket`) and gets `cancelled_text()`.
- `agent_reply` (the row's text) is sent with author "agent" and the agent's
  id; to an opted-out number, or when its ticket was cancelled by the person's
  "batal" processed before it, it is stored as failed, never sent.
- `queue_update` (author "system") is dropped unless its ticket is still open.

Internal events meant for Rasa (`bot.messages.events.TO_RASA`) are dropped
while a ticket is active (`drops_for_rasa`): the bot stays quiet, and
`handoff_resolved` makes it re-read the status afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.handoff.commands import is_cancel_command
from bot.handoff.errors import HandoffError, TicketNotFound
from bot.handoff.models import TICKET_CANCELLED, TICKET_OPEN
from bot.handoff.records import TicketInfo
from bot.handoff.texts import cancelled_text
from bot.handoff.tickets import cancel, get_ticket
from bot.messages.models import AUTHOR_AGENT, AUTHOR_BOT, AUTHOR_SYSTEM, OPTED_OUT

log = logging.getLogger(__name__)

TICKET_CANCELLED_ERROR = "ticket cancelled"
"""The outbox error of an agent's reply withheld after the person cancelled."""


@dataclass(frozen=True)
class Routed:
    """What the handoff decided for one message."""

    text: str | None = None
    """Rendered by the channel and sent (None: the message is done, no reply)."""
    author: str = AUTHOR_BOT
    agent_id: int | None = None
    withheld: str | None = None
    """Store the rendered bodies as failed with this error: never sent."""
    cancel_ticket: int | None = None
    """The ticket this message cancels, in the same transaction."""


def agent_id(data: Mapping[str, Any]) -> int | None:
    """The agent's id from an `agent_reply` event's data (None when missing)."""
    value = data.get("agent_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def while_handed_off(text: str, ticket: TicketInfo) -> Routed:
    """A person's message while their ticket is active: done without a reply,
    unless it cancels the ticket (confirmed with `cancelled_text()`)."""
    if not is_cancel_command(text):
        return Routed()
    return Routed(text=cancelled_text(), author=AUTHOR_SYSTEM, cancel_ticket=ticket.id)


def agent_reply(
    session: Session,
    text: str,
    data: Mapping[str, Any],
    ticket: TicketInfo | None,
    opted_out: bool,
) -> Routed:
    """An agent's reply: sent as the agent, or withheld (opted out, or the
    person cancelled its ticket meanwhile); an empty one is dropped."""
    agent = agent_id(data)
    if not text.strip():
        return Routed(author=AUTHOR_AGENT, agent_id=agent)
    withheld = None
    if opted_out:
        withheld = OPTED_OUT
    elif _ticket_cancelled(session, data.get("ticket_id"), ticket):
        withheld = TICKET_CANCELLED_ERROR
    return Routed(
        text=text.strip(), author=AUTHOR_AGENT, agent_id=agent, withheld=withheld
    )


def _ticket_cancelled(
    session: Session, ticket_id: Any, active: TicketInfo | None
) -> bool:
    """Whether the reply's ticket was cancelled: the person's "batal" was
    stored before the reply and processed first. A resolved ticket is not:
    the agent's last reply before resolving still goes out."""
    if not isinstance(ticket_id, int) or isinstance(ticket_id, bool):
        return False  # a reply stored without its ticket
    if active is not None and active.id == ticket_id:
        return False
    try:
        return get_ticket(session, ticket_id).status == TICKET_CANCELLED
    except TicketNotFound:
        return False


def queue_update(
    text: str, data: Mapping[str, Any], ticket: TicketInfo | None, opted_out: bool
) -> Routed:
    """A queue update for a ticket still open, sent as "system"; otherwise
    (taken, closed, opted out, empty) dropped."""
    wanted = data.get("ticket_id")
    if (
        ticket is None
        or ticket.status != TICKET_OPEN
        or (wanted is not None and wanted != ticket.id)
        or opted_out
        or not text.strip()
    ):
        return Routed(author=AUTHOR_SYSTEM)
    return Routed(text=text.strip(), author=AUTHOR_SYSTEM)


def drops_for_rasa(ticket: TicketInfo | None) -> bool:
    """Whether an internal event meant for Rasa is dropped (a ticket is active)."""
    return ticket is not None


def cancel_ticket(
    session: Session, conversation_id: int, ticket_id: int, now: datetime
) -> None:
    """Cancel the ticket the person asked to leave, in the caller's transaction
    (already closed by an agent meanwhile: nothing to do, the confirmation
    still goes out)."""
    try:
        cancel(session, ticket_id, now)
    except HandoffError as exc:
        log.info(
            "conversation %s: ticket %s not cancelled: %s",
            conversation_id,
            ticket_id,
            type(exc).__name__,
        )
    else:
        log.info(
            "conversation %s: ticket %s cancelled by the person",
            conversation_id,
            ticket_id,
        )
