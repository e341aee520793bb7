"""Figures for the supervisor: agent activity today, the registration funnel and
the gateway's message backlog.

The funnel follows the figures published in April 2020 (registered, e-mail
verified, NIK verified, joined a batch, selected): each stage counts the
applicants who got at least that far, with its share of all registered and of
the stage before. The queue figures come from `bot.handoff.tickets.queue_stats`;
the backlog from the gateway's `BacklogMonitor` (its latest look, all processes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import distinct, exists, func, or_, select
from sqlalchemy.orm import Session

from bot.console import audit
from bot.console.agents import AgentInfo, list_agents
from bot.console.labels import start_of_day_wib
from bot.messages.backlog import Figures
from bot.registry.models import (
    RESULT_SELECTED,
    STEP_DONE,
    STEP_EMAIL,
    STEP_NIK,
    Applicant,
    BatchMembership,
    RegistrationStep,
)

FUNNEL_STAGES = (
    ("registered", "Terdaftar"),
    ("email_verified", "Email terverifikasi"),
    ("nik_verified", "NIK terverifikasi"),
    ("joined_batch", "Ikut gelombang"),
    ("selected", "Lolos seleksi"),
)
ACTIVITY_ACTIONS = (audit.CLAIM, audit.REPLY, audit.RESOLVE)


@dataclass(frozen=True)
class FunnelStage:
    """One stage of the funnel: how many got this far, and which share."""

    key: str
    label: str
    count: int
    share_of_registered: float
    share_of_previous: float


@dataclass(frozen=True)
class BacklogView:
    """The message backlog as the supervisor page shows it."""

    pending: int
    conversations: int
    oldest_wait: timedelta | None
    expected_wait: timedelta | None
    stalled: bool
    """Messages wait and none is answered (Rasa or the action server down)."""
    per_minute: int | None
    """Messages answered per minute while busy (None: no backlog lately)."""
    measured_at: datetime | None
    over_capacity: bool
    counts: dict[str, int]


def backlog_view(
    figures: Figures, counts: dict[str, int], over_capacity: bool
) -> BacklogView:
    """The backlog figures in the page's units."""

    def span(seconds: float | None) -> timedelta | None:
        return None if seconds is None else timedelta(seconds=seconds)

    return BacklogView(
        pending=figures.pending,
        conversations=figures.conversations,
        oldest_wait=span(figures.oldest_age),
        expected_wait=span(figures.expected_wait),
        stalled=figures.pending > 0 and figures.expected_wait is None,
        per_minute=None if figures.rate is None else round(figures.rate * 60),
        measured_at=figures.measured_at,
        over_capacity=over_capacity,
        counts=dict(counts),
    )


@dataclass(frozen=True)
class AgentActivity:
    """What one agent did today (since 00:00 WIB)."""

    agent: AgentInfo
    claimed: int
    replied: int
    resolved: int
    last_seen_at: datetime | None


def _step_done(step: str) -> object:
    return exists().where(
        RegistrationStep.applicant_id == Applicant.id,
        RegistrationStep.step == step,
        RegistrationStep.status == STEP_DONE,
    )


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def registration_funnel(session: Session) -> list[FunnelStage]:
    """The five stages, in order."""
    registered = session.execute(select(func.count(Applicant.id))).scalar_one()
    email = session.execute(
        select(func.count(Applicant.id)).where(
            or_(Applicant.email_verified_at.is_not(None), _step_done(STEP_EMAIL))
        )
    ).scalar_one()
    nik = session.execute(
        select(func.count(Applicant.id)).where(_step_done(STEP_NIK))
    ).scalar_one()
    joined = session.execute(
        select(func.count(distinct(BatchMembership.applicant_id)))
    ).scalar_one()
    selected = session.execute(
        select(func.count(distinct(BatchMembership.applicant_id))).where(
            BatchMembership.result == RESULT_SELECTED
        )
    ).scalar_one()
    counts = [int(n or 0) for n in (registered, email, nik, joined, selected)]
    stages = []
    for index, ((key, label), count) in enumerate(
        zip(FUNNEL_STAGES, counts, strict=True)
    ):
        previous = counts[index - 1] if index else count
        stages.append(
            FunnelStage(
                key=key,
                label=label,
                count=count,
                share_of_registered=_share(count, counts[0]),
                share_of_previous=_share(count, previous),
            )
        )
    return stages


def agent_activity(session: Session, now: datetime) -> list[AgentActivity]:
    """Every active agent's claims, replies and resolutions since 00:00 WIB,
    and when they were last seen."""
    counts = audit.counts_by_agent(session, ACTIVITY_ACTIONS, start_of_day_wib(now))
    return [
        AgentActivity(
            agent=agent,
            claimed=counts.get((agent.id, audit.CLAIM), 0),
            replied=counts.get((agent.id, audit.REPLY), 0),
            resolved=counts.get((agent.id, audit.RESOLVE), 0),
            last_seen_at=agent.last_seen_at,
        )
        for agent in list_agents(session, active_only=True)
    ]
