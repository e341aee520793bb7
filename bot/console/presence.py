"""Which agents are at work now (for expected waiting times).

An agent counts as online while logged in (a live session) and seen within the
last two minutes: an open console page polls every few seconds, and each
request marks the agent as seen (at most every 30 s).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.console.models import Agent, AgentSession

ONLINE_WINDOW = timedelta(minutes=2)


def agents_online(
    session: Session, now: datetime, window: timedelta = ONLINE_WINDOW
) -> int:
    """How many active agents (supervisors included) are online at `now`
    (naive UTC)."""
    live = (
        select(AgentSession.agent_id)
        .where(AgentSession.expires_at > now)
        .scalar_subquery()
    )
    return int(
        session.execute(
            select(func.count(Agent.id)).where(
                Agent.active.is_(True),
                Agent.last_seen_at >= now - window,
                Agent.id.in_(live),
            )
        ).scalar_one()
    )
