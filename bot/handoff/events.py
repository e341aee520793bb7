"""Once-only keys of the internal events the handoff sends through the inbox.

Their names (`AGENT_REPLY`, `QUEUE_UPDATE`, `HANDOFF_RESOLVED`) are in the one
registry, `bot.messages.events`; each is stored with
`bot.messages.events.enqueue_notification` (or `bot.handoff.tickets.notify_ticket`)
and handled in order with the person's own messages (`bot.handoff.routing`).
"""

from __future__ import annotations


def resolved_key(ticket_id: int) -> str:
    """The once-only key of a ticket's `handoff_resolved` event."""
    return f"handoff:{ticket_id}:resolved"


def queue_update_key(ticket_id: int, minutes: int) -> str:
    """The once-only key of a `queue_update` telling a wait of `minutes`."""
    return f"handoff:{ticket_id}:wait:{minutes}"


def agent_reply_key(ticket_id: int, reply_token: str) -> str:
    """The once-only key of an agent's reply: `reply_token` names one reply
    (e.g. a form's random token, so a double submit stores it once; at most
    80 characters)."""
    if not reply_token or len(reply_token) > 80:
        raise ValueError("a reply token has 1 to 80 characters")
    return f"handoff:{ticket_id}:reply:{reply_token}"
