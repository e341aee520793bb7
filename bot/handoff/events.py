"""Names of the internal events the handoff sends through the gateway inbox.

Each is stored with `bot.gateway.notify.enqueue_notification` (or
`bot.handoff.tickets.notify_ticket`) and processed by the conversation worker in
order with the person's own messages:

- `agent_reply`: the row's text is the agent's reply; `data={"agent_id": n,
  "ticket_id": t}`. Rendered by the channel, stored with author "agent"
  (withheld when ticket `t` was cancelled meanwhile); Rasa is not called.
- `queue_update`: the row's text is for the person (the wait grew);
  `data={"ticket_id": n}`. Author "system"; dropped once the ticket is no
  longer open. Rasa is not called.
- `handoff_resolved`: Rasa gets `/check_status` with `{"internal":
  "handoff_resolved"}` in the metadata and says what is next.
"""

from __future__ import annotations

AGENT_REPLY = "agent_reply"
QUEUE_UPDATE = "queue_update"
HANDOFF_RESOLVED = "handoff_resolved"


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
