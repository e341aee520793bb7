"""What a supervisor reviews about a batch: members by result, why members were
left out, the announcement's messages and the reminders still due."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.registry.models import Batch, BatchMembership
from bot.selection.announcements import message_counts
from bot.selection.delivery import paused_at
from bot.selection.lifecycle import RunInfo, run_of
from bot.selection.models import NOTICE_PENDING, DueNotice

memberships = BatchMembership.__table__
notices = DueNotice.__table__


@dataclass(frozen=True)
class Figures:
    """One batch's run and its counts."""

    run: RunInfo
    results: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)
    reminders_due: int = 0
    paused: bool = False
    """The announcement's sending is paused."""


def batch_figures(session: Session, batch_id: int) -> Figures:
    """The figures of one batch (`LifecycleError` `not_found` if none)."""
    run = run_of(session, batch_id)
    results = session.execute(
        select(memberships.c.result, func.count())
        .where(memberships.c.batch_id == batch_id)
        .group_by(memberships.c.result)
    ).all()
    excluded = session.execute(
        select(memberships.c.excluded_reason, func.count())
        .where(
            memberships.c.batch_id == batch_id,
            memberships.c.excluded_reason.is_not(None),
        )
        .group_by(memberships.c.excluded_reason)
    ).all()
    reminders = session.execute(
        select(func.count())
        .select_from(
            notices.join(memberships, memberships.c.id == notices.c.membership_id)
        )
        .where(memberships.c.batch_id == batch_id, notices.c.status == NOTICE_PENDING)
    ).scalar_one()
    return Figures(
        run=run,
        results={str(k): int(n) for k, n in results},
        excluded={str(k): int(n) for k, n in excluded},
        messages=message_counts(session, batch_id),
        reminders_due=int(reminders),
        paused=paused_at(session, batch_id) is not None,
    )


def all_figures(session: Session) -> list[Figures]:
    """Every batch's figures, the newest number first."""
    ids = session.execute(select(Batch.id).order_by(Batch.number.desc())).scalars()
    return [batch_figures(session, batch_id) for batch_id in list(ids)]
