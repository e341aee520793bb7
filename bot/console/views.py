"""What the console pages and their JSON show: the queue and one ticket.

Plain dicts of strings and numbers, built inside one database session, used
both by the server-rendered pages (Jinja, autoescaped) and by the JSON the
pages poll (rendered with `textContent` by the script). Access is checked here
too: `visible_ticket` refuses a ticket the agent may not see. Personal data the
person typed (NIK, KK, phone, e-mail) is masked in the transcript, and a closed
ticket shows the conversation only up to its end (not what came later, e.g.
another agent's ticket in the same conversation).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console import access, labels
from bot.console.agents import AgentInfo, list_agents
from bot.handoff import tickets
from bot.handoff.errors import TicketNotFound
from bot.handoff.records import TicketInfo
from bot.messages.events import masked_address
from bot.messages.models import Conversation
from bot.privacy.detect import mask_personal_data

TRANSCRIPT_LIMIT = 200


class Refusal(Exception):  # noqa: N818 (reads as the refusal)
    """A request the console turns down: HTTP status, a code for the page's
    message, and an Indonesian text."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message


NOT_FOUND = Refusal(404, "not_found", "Tiket tidak ditemukan.")
FORBIDDEN = Refusal(403, "forbidden", "Tiket ini ditangani petugas lain.")


def visible_ticket(session: Session, ticket_id: int, agent: AgentInfo) -> TicketInfo:
    """The ticket if the agent may see it; Refusal 404 or 403 otherwise."""
    try:
        ticket = tickets.get_ticket(session, ticket_id)
    except TicketNotFound as exc:
        raise NOT_FOUND from exc
    if not access.can_view(agent, ticket):
        raise FORBIDDEN
    return ticket


def agent_names(session: Session) -> dict[int, str]:
    """Display names of every agent by id."""
    return {agent.id: agent.display_name for agent in list_agents(session)}


def queue_items(
    session: Session, agent: AgentInfo, now: datetime
) -> list[dict[str, Any]]:
    """The active tickets this agent may see, oldest first."""
    names = agent_names(session)
    items = []
    for ticket in tickets.open_tickets(session):
        if not access.can_view(agent, ticket):
            continue
        wait = now - ticket.created_at
        items.append(
            {
                "id": ticket.id,
                "url": f"/console/tickets/{ticket.id}",
                "channel": ticket.channel,
                "channel_label": labels.label(labels.CHANNELS, ticket.channel),
                "reason": ticket.reason,
                "reason_label": labels.label(labels.TICKET_REASONS, ticket.reason),
                "status": ticket.status,
                "status_label": labels.label(labels.TICKET_STATUSES, ticket.status),
                "waiting": labels.duration(wait),
                "waiting_seconds": max(int(wait.total_seconds()), 0),
                "agent": names.get(ticket.agent_id, "") if ticket.agent_id else "",
                "mine": ticket.agent_id == agent.id,
            }
        )
    return items


def _version(payload: dict[str, Any]) -> str:
    encoded = json.dumps(payload, sort_keys=True, ensure_ascii=True).encode()
    return hashlib.sha256(encoded).hexdigest()[:20]


def ticket_state(
    session: Session, ticket: TicketInfo, agent: AgentInfo, now: datetime
) -> dict[str, Any]:
    """The ticket as the page shows it: header, permissions, transcript, notes,
    and a `version` that changes whenever any of it does."""
    names = agent_names(session)
    turns = [
        {
            "author": turn.author,
            "author_label": (
                names.get(turn.agent_id, labels.AUTHORS["agent"])
                if turn.author == "agent" and turn.agent_id
                else labels.label(labels.AUTHORS, turn.author)
            ),
            "text": mask_personal_data(turn.text),
            "at": labels.wib(turn.at),
            "delivery": labels.DELIVERY.get(turn.delivery or "", "")
            if turn.author != "user"
            else "",
        }
        for turn in tickets.transcript(
            session,
            ticket.conversation_id,
            limit=TRANSCRIPT_LIMIT,
            until=ticket.resolved_at or ticket.cancelled_at,
        )
    ]
    notes = [
        {
            "agent": names.get(note.agent_id, f"#{note.agent_id}"),
            "text": note.text,
            "at": labels.wib(note.created_at),
        }
        for note in tickets.notes_of(session, ticket.id)
    ]
    end = ticket.resolved_at or ticket.cancelled_at or now
    address = session.execute(
        select(Conversation.address).where(Conversation.id == ticket.conversation_id)
    ).scalar_one_or_none()
    state: dict[str, Any] = {
        "id": ticket.id,
        "channel": ticket.channel,
        "channel_label": labels.label(labels.CHANNELS, ticket.channel),
        "address": masked_address(ticket.channel, address) if address else "-",
        "reason_label": labels.label(labels.TICKET_REASONS, ticket.reason),
        "status": ticket.status,
        "status_label": labels.label(labels.TICKET_STATUSES, ticket.status),
        "agent": names.get(ticket.agent_id, "") if ticket.agent_id else "",
        "created": labels.wib(ticket.created_at),
        "waiting": labels.duration(end - ticket.created_at),
        "can_claim": access.can_claim(agent, ticket),
        "can_reply": access.can_reply(agent, ticket) or access.can_claim(agent, ticket),
        "can_resolve": access.can_resolve(agent, ticket),
        "can_assign": access.can_assign(agent, ticket),
        "turns": turns,
        "notes": notes,
        "erased": ticket.erased_at is not None,
    }
    versioned = {key: value for key, value in state.items() if key != "waiting"}
    state["version"] = _version(versioned)
    return state
