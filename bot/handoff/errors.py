"""Typed refusals of the ticket functions (what the console can tell the agent).

A function that raises one of these has written nothing, so the caller's
transaction stays usable. The names read as the refusal itself, hence no
`Error` suffix.
"""

# ruff: noqa: N818

from __future__ import annotations


class HandoffError(Exception):
    """Base class of the handoff's expected refusals."""


class ConversationNotFound(HandoffError):
    """No conversation with that id (a ticket needs one)."""

    def __init__(self, conversation_id: int) -> None:
        super().__init__(f"no conversation {conversation_id}")
        self.conversation_id = conversation_id


class TicketNotFound(HandoffError):
    """No ticket with that id."""

    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"no ticket {ticket_id}")
        self.ticket_id = ticket_id


class TicketClosed(HandoffError):
    """The ticket is resolved or cancelled: nothing more can happen to it."""

    def __init__(self, ticket_id: int, status: str) -> None:
        super().__init__(f"ticket {ticket_id} is {status}")
        self.ticket_id = ticket_id
        self.status = status


class TicketTaken(HandoffError):
    """Another agent has claimed the ticket already."""

    def __init__(self, ticket_id: int, agent_id: int) -> None:
        super().__init__(f"ticket {ticket_id} is assigned to agent {agent_id}")
        self.ticket_id = ticket_id
        self.agent_id = agent_id
