"""Who may see and act on which ticket.

An agent sees open tickets nobody has taken and tickets assigned to them,
never a ticket assigned to another agent; a supervisor sees every ticket. Only
the agent a ticket is assigned to replies to it; that agent or a supervisor
resolves it. Claiming needs an open ticket nobody has taken (a supervisor
assigns instead). Clear personal data is revealed only on an active ticket the
agent holds (supervisors: any ticket).
"""

from __future__ import annotations

from typing import Protocol

from bot.console.agents import AgentInfo

OPEN = "open"
ASSIGNED = "assigned"
ACTIVE = (OPEN, ASSIGNED)


class TicketLike(Protocol):
    """What the rules look at: the ticket's status and assigned agent."""

    @property
    def status(self) -> str:
        """open, assigned, resolved or cancelled."""

    @property
    def agent_id(self) -> int | None:
        """The agent it is assigned to (or was, once closed)."""


def can_view(agent: AgentInfo, ticket: TicketLike) -> bool:
    """The agent may open the ticket, read it and add notes."""
    if agent.is_supervisor or ticket.agent_id == agent.id:
        return True
    return ticket.agent_id is None and ticket.status == OPEN


def can_claim(agent: AgentInfo, ticket: TicketLike) -> bool:
    """The agent may take the ticket for themselves."""
    return ticket.status == OPEN and ticket.agent_id in (None, agent.id)


def can_reply(agent: AgentInfo, ticket: TicketLike) -> bool:
    """The agent may reply to the person (the ticket is theirs and active)."""
    return ticket.status in ACTIVE and ticket.agent_id == agent.id


def can_resolve(agent: AgentInfo, ticket: TicketLike) -> bool:
    """The agent may close the ticket and hand the person back to the bot."""
    if ticket.status not in ACTIVE:
        return False
    return agent.is_supervisor or ticket.agent_id == agent.id


def can_reveal(agent: AgentInfo, ticket: TicketLike) -> bool:
    """The agent may see the applicant's data in clear: an active ticket they
    hold, never one that is closed (supervisors: any ticket; every reveal is
    audited)."""
    if agent.is_supervisor:
        return True
    return ticket.status in ACTIVE and ticket.agent_id == agent.id


def can_assign(agent: AgentInfo, ticket: TicketLike) -> bool:
    """The agent may (re)assign the ticket to someone: supervisors only."""
    return agent.is_supervisor and ticket.status in ACTIVE
