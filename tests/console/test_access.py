"""Who may see and act on which ticket (the rules alone, every combination)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.console.access import (
    can_assign,
    can_claim,
    can_reply,
    can_resolve,
    can_reveal,
    can_view,
)
from bot.console.agents import AgentInfo

ME = AgentInfo(1, "andi", "Andi", "agent", True, None)
BOSS = AgentInfo(9, "sari", "Sari", "supervisor", True, None)
OTHER = 2


@dataclass(frozen=True)
class Ticket:
    """Just what the rules read."""

    status: str
    agent_id: int | None


# (ticket, view, claim, reply, resolve, reveal) for the agent ME
CASES = [
    (Ticket("open", None), True, True, False, False, False),
    (Ticket("assigned", ME.id), True, False, True, True, True),
    (Ticket("assigned", OTHER), False, False, False, False, False),
    (Ticket("resolved", ME.id), True, False, False, False, False),
    (Ticket("resolved", OTHER), False, False, False, False, False),
    (Ticket("cancelled", None), False, False, False, False, False),
    (Ticket("cancelled", ME.id), True, False, False, False, False),
    (Ticket("cancelled", OTHER), False, False, False, False, False),
]


@pytest.mark.parametrize(
    ("ticket", "view", "claim", "reply", "resolve", "reveal"), CASES
)
def test_an_agent(
    ticket: Ticket, view: bool, claim: bool, reply: bool, resolve: bool, reveal: bool
) -> None:
    assert can_view(ME, ticket) is view
    assert can_claim(ME, ticket) is claim
    assert can_reply(ME, ticket) is reply
    assert can_resolve(ME, ticket) is resolve
    assert can_reveal(ME, ticket) is reveal
    assert can_assign(ME, ticket) is False


@pytest.mark.parametrize("ticket", [case[0] for case in CASES])
def test_a_supervisor_sees_all_and_assigns_active_tickets(ticket: Ticket) -> None:
    active = ticket.status in ("open", "assigned")
    assert can_view(BOSS, ticket) is True
    assert can_reveal(BOSS, ticket) is True  # any ticket, audited by the route
    assert can_assign(BOSS, ticket) is active
    assert can_resolve(BOSS, ticket) is active
    assert can_reply(BOSS, ticket) is False  # not theirs: assign it to yourself
