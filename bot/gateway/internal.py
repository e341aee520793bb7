"""Where an internal event goes (`bot.messages.events`: a row whose `event`
has an "internal" key, e.g. a NIK check finished).

It is not the person's text: the channel does not interpret it. Events in
`TO_RASA` reach Rasa as their message (an intent in Rasa's "/intent" syntax)
with `"internal": name` in the metadata, and their replies are rendered and
stored as usual; a failed internal turn is given up without an apology. The
handoff's own events (`HANDOFF_EVENTS`: an agent's reply, a queue update) are
sent without Rasa (`bot.handoff.routing`). Any other name, any event for an
opted-out conversation, and events for Rasa while a ticket is active are
marked done untouched.
"""

from __future__ import annotations

import enum
import logging

from bot.gateway.outcome import PendingMessage
from bot.handoff.routing import drops_for_rasa
from bot.messages.events import AGENT_REPLY, HANDOFF_EVENTS, TO_RASA

log = logging.getLogger(__name__)


class Route(enum.Enum):
    """Where one internal event goes."""

    RASA = "rasa"
    AGENT_REPLY = "agent_reply"
    QUEUE_UPDATE = "queue_update"
    DROP = "drop"
    """Marked done untouched."""


def route(pending: PendingMessage, name: str) -> Route:
    """The route of the internal event `name` of this row (drops are logged)."""
    ids = (pending.conversation_id, pending.inbox_id)
    if name in HANDOFF_EVENTS:
        return Route.AGENT_REPLY if name == AGENT_REPLY else Route.QUEUE_UPDATE
    if name in TO_RASA and drops_for_rasa(pending.ticket):
        log.info(
            "conversation %s inbox %s: internal event %r dropped (ticket %s)",
            *ids,
            name,
            pending.ticket.id if pending.ticket else None,
        )
        return Route.DROP
    if name not in TO_RASA or pending.opted_out:
        why = "opted out" if name in TO_RASA else "unknown event"
        log.warning(
            "conversation %s inbox %s: internal event %r not sent to Rasa (%s)",
            *ids,
            name[:64],
            why,
        )
        return Route.DROP
    return Route.RASA
