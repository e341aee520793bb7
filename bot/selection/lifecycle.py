"""A batch's lifecycle: schedule (open), close, publish; where a batch stands.

Each step is one conditional `UPDATE batch_run ... WHERE state = <previous>`:
asked twice, or by two supervisors at once, it happens once and the second
request is refused with the reason (`LifecycleError`), having written
nothing. A batch made elsewhere (the seed, `ensure_batch`) gets its run row,
`open` with as many places as its quota, the first time it is acted on. The
selection itself is in `bot.selection.selection`. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.insert_ignoring import insert_ignoring_conflict
from bot.policy.programme import load_policy
from bot.registry import BatchInfo, batch_by_number, ensure_batch, get_batch
from bot.registry._sql import (
    allow_long_statements,
    naive_utc,
    now_or,
)
from bot.registry.errors import BatchNotFound
from bot.registry.models import (
    APPLICANT_PARTICIPANT,
    APPLICANT_REGISTERED,
    DRAWN_STATES,
    RESULT_NOT_SELECTED,
    RESULT_SELECTED,
    RUN_CLOSED,
    RUN_OPEN,
    RUN_PUBLISHED,
    RUN_SELECTED,
    STEP_DONE,
    STEP_FAILED,
    STEP_SELECTION,
    Applicant,
    Batch,
    BatchMembership,
    BatchRun,
    RegistrationStep,
)
from bot.selection.announcements import create_announcements
from bot.selection.errors import LifecycleError
from bot.selection.notices import REMINDER_DAYS, create_reminders

runs = BatchRun.__table__
batches = Batch.__table__
memberships = BatchMembership.__table__
applicants = Applicant.__table__
steps = RegistrationStep.__table__

NOT_SELECTED_REASON = "not_selected"


@dataclass(frozen=True)
class RunInfo:
    """A batch and where its lifecycle stands."""

    batch: BatchInfo
    places: int
    state: str
    closed_at: datetime | None = None
    seed: str | None = None
    selection_started_at: datetime | None = None
    selected_at: datetime | None = None
    eligible_count: int | None = None
    selected_count: int | None = None
    published_at: datetime | None = None

    def stage(self, now: datetime) -> str:
        """`scheduled`, `open` or `ended` (window passed, not closed yet) for a
        run still `open`; its state otherwise."""
        if self.state != RUN_OPEN:
            return self.state
        if now < self.batch.opens_at:
            return "scheduled"
        return "open" if now < self.batch.closes_at else "ended"


def run_of(session: Session, batch_id: int) -> RunInfo:
    """The batch's run (a batch not yet acted on is `open`); refused `not_found`."""
    try:
        batch = get_batch(session, batch_id)
    except BatchNotFound as exc:
        raise LifecycleError("not_found") from exc
    row = session.execute(select(runs).where(runs.c.batch_id == batch_id)).one_or_none()
    if row is None:
        return RunInfo(batch=batch, places=batch.quota, state=RUN_OPEN)
    return RunInfo(
        batch=batch,
        places=row.places,
        state=row.state,
        closed_at=row.closed_at,
        seed=row.seed,
        selection_started_at=row.selection_started_at,
        selected_at=row.selected_at,
        eligible_count=row.eligible_count,
        selected_count=row.selected_count,
        published_at=row.published_at,
    )


def ensure_run(session: Session, batch: BatchInfo, places: int | None = None) -> None:
    """The batch's run row, created `open` if missing (an existing one is kept)."""
    insert_ignoring_conflict(
        session,
        runs,
        {
            "batch_id": batch.id,
            "places": places or batch.quota,
            "state": RUN_OPEN,
            "updated_at": now_or(None),
        },
        ["batch_id"],
    )


def schedule_batch(
    session: Session,
    number: int,
    opens_at: datetime,
    closes_at: datetime,
    quota: int,
    places: int | None = None,
    now: datetime | None = None,
) -> tuple[RunInfo, bool]:
    """Open (or schedule) batch `number`: joined by at most `quota` members, of
    whom at most `places` (default: all) are selected. Returns the run and
    whether it was created; the same request again returns the same batch."""
    moment = now_or(now)
    opens, closes = naive_utc(opens_at), naive_utc(closes_at)
    wanted = places or quota
    if quota < 1 or wanted < 1:
        raise LifecycleError("bad_quota")
    if wanted > quota:
        raise LifecycleError("places_over_quota")
    existing = batch_by_number(session, number)
    if existing is not None:
        run = run_of(session, existing.id)
        same = (existing.opens_at, existing.closes_at, existing.quota, run.places)
        if same == (opens, closes, quota, wanted):
            return run, False
        raise LifecycleError("exists")
    if number < 1 or closes <= opens or closes <= moment:
        raise LifecycleError("bad_window")
    batch = ensure_batch(session, number, opens, closes, quota, now=moment)
    ensure_run(session, batch, wanted)
    return run_of(session, batch.id), True


def close_batch(
    session: Session, batch_id: int, now: datetime | None = None
) -> RunInfo:
    """Close the batch: nobody joins it any more (its window ends now if it had
    not yet) and the selection may run. Refused before it opens, or twice."""
    moment = now_or(now)
    run = run_of(session, batch_id)
    if run.state != RUN_OPEN:
        raise LifecycleError("already_closed")
    if moment <= run.batch.opens_at:
        raise LifecycleError("not_open_yet")
    ensure_run(session, run.batch)
    moved = session.execute(
        update(runs)
        .where(runs.c.batch_id == batch_id, runs.c.state == RUN_OPEN)
        .values(state=RUN_CLOSED, closed_at=moment, updated_at=moment)
    )
    if moved.rowcount != 1:  # closed by someone else in between
        raise LifecycleError("already_closed")
    session.execute(
        update(batches)
        .where(batches.c.id == batch_id, batches.c.closes_at > moment)
        .values(closes_at=moment)
    )
    return run_of(session, batch_id)


def _policy_versions(session: Session, batch_id: int) -> list[str]:
    return list(
        session.execute(
            select(applicants.c.policy_version)
            .distinct()
            .select_from(
                memberships.join(
                    applicants, applicants.c.id == memberships.c.applicant_id
                )
            )
            .where(memberships.c.batch_id == batch_id)
        ).scalars()
    )


def _members(batch_id: int, result: str) -> Any:
    """Applicant ids of the batch's members with `result` (a subquery)."""
    return select(memberships.c.applicant_id).where(
        memberships.c.batch_id == batch_id, memberships.c.result == result
    )


def publish_results(
    session: Session,
    batch_id: int,
    now: datetime | None = None,
    reminder_days: Sequence[int] = REMINDER_DAYS,
) -> RunInfo:
    """Publish a drawn batch's results: the selected become participants with a
    purchase deadline (their policy's days from now) and reminders before it,
    each member's selection step is done or failed, and one announcement message
    per member and linked channel is written for the sender. Refused before the
    selection, or twice."""
    moment = now_or(now)
    run = run_of(session, batch_id)
    if run.state == RUN_PUBLISHED:
        raise LifecycleError("already_published")
    if run.state not in DRAWN_STATES:
        raise LifecycleError("not_selected")
    moved = session.execute(
        update(runs)
        .where(runs.c.batch_id == batch_id, runs.c.state == RUN_SELECTED)
        .values(state=RUN_PUBLISHED, published_at=moment, updated_at=moment)
    )
    if moved.rowcount != 1:
        raise LifecycleError("already_published")
    allow_long_statements(session)
    for version in _policy_versions(session, batch_id):
        days = load_policy(version).training.first_purchase_days
        session.execute(
            update(memberships)
            .where(
                memberships.c.batch_id == batch_id,
                memberships.c.result == RESULT_SELECTED,
                memberships.c.applicant_id.in_(
                    select(applicants.c.id).where(
                        applicants.c.policy_version == version
                    )
                ),
            )
            .values(purchase_deadline=moment + timedelta(days=days))
        )
    session.execute(
        update(applicants)
        .where(
            applicants.c.id.in_(_members(batch_id, RESULT_SELECTED)),
            applicants.c.status == APPLICANT_REGISTERED,
        )
        .values(status=APPLICANT_PARTICIPANT, updated_at=moment)
    )
    session.execute(
        update(steps)
        .where(
            steps.c.step == STEP_SELECTION,
            steps.c.applicant_id.in_(_members(batch_id, RESULT_SELECTED)),
        )
        .values(
            status=STEP_DONE,
            failure_reason=None,
            failure_detail=None,
            completed_at=moment,
            updated_at=moment,
        )
    )
    session.execute(
        update(steps)
        .where(
            steps.c.step == STEP_SELECTION,
            steps.c.applicant_id.in_(_members(batch_id, RESULT_NOT_SELECTED)),
        )
        .values(
            status=STEP_FAILED,
            failure_reason=NOT_SELECTED_REASON,
            failure_detail=None,
            completed_at=None,
            updated_at=moment,
        )
    )
    create_announcements(session, batch_id, moment)
    create_reminders(session, batch_id, moment, reminder_days)
    return run_of(session, batch_id)
