"""Selection by the policy: re-check every member, draw, record; crash-safe.

Two transactions (`select_batch`):
1. `start_selection` moves the run `closed -> selecting` and records the seed
   (a new random one unless given). Committed before anything is drawn, so the
   draw can always be reproduced from what the batch shows.
2. `finish_selection` locks the run, re-checks each pending member against the
   policy of their registration (NIK verified; once in a lifetime: not already
   a participant, not selected in another batch, not an erased participant; the
   KK cap where the policy has one; consent not withdrawn), draws with the
   recorded seed (`bot.selection.draw`), records every result and moves the run
   to `selected`, all in one transaction.

A crash in between, or in the middle of step 2, leaves the run `selecting`
with its seed: running the selection again finishes it with the same seed and
the same draw. Running it after it finished changes nothing (refused in step 1,
a no-op in step 2). Members not selected keep `registered` and may join the
next batch once the results are published.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from bot.policy.programme import load_policy
from bot.registry import record_decisions
from bot.registry._sql import allow_long_statements, now_or
from bot.registry.models import (
    APPLICANT_PARTICIPANT,
    APPLICANT_REVOKED,
    DRAWN_STATES,
    RESULT_PENDING,
    RESULT_SELECTED,
    RUN_CLOSED,
    RUN_OPEN,
    RUN_SELECTED,
    RUN_SELECTING,
    SEED_MAX,
    STEP_DONE,
    STEP_NIK,
    Applicant,
    BatchMembership,
    BatchRun,
    RegistrationStep,
)
from bot.selection.draw import Candidate, draw
from bot.selection.errors import LifecycleError
from bot.selection.lifecycle import RunInfo, run_of

EXCLUDED_NIK = "nik_unverified"
EXCLUDED_PARTICIPANT = "already_participant"
EXCLUDED_WITHDRAWN = "consent_withdrawn"

runs = BatchRun.__table__
memberships = BatchMembership.__table__
applicants = Applicant.__table__
steps = RegistrationStep.__table__
ErasedParticipants = Callable[[Session, list[str]], set[str]]
"""Which of these NIKs belonged to participants whose data was erased (the
privacy module keeps their keyed hashes: `bot.privacy.erasure`)."""


def new_seed() -> str:
    """A fresh random seed (128 bits, hex)."""
    return secrets.token_hex(16)


def start_selection(
    session: Session,
    batch_id: int,
    now: datetime | None = None,
    seed: str | None = None,
    places: int | None = None,
) -> RunInfo:
    """Move a closed batch to `selecting` with its seed (and at most `places`,
    never more than the batch's). A batch already `selecting` (a crash) is
    returned as it is, its seed kept. Refused when not closed or already drawn."""
    moment = now_or(now)
    run = run_of(session, batch_id)
    if run.state == RUN_SELECTING:
        return run
    if run.state in DRAWN_STATES:
        raise LifecycleError("already_selected")
    if run.state == RUN_OPEN:
        raise LifecycleError("not_closed")
    if places is not None and (places < 1 or places > run.places):
        raise LifecycleError("over_places")
    chosen = seed or new_seed()
    if not 0 < len(chosen) <= SEED_MAX:
        raise ValueError(f"a seed has 1 to {SEED_MAX} characters")
    moved = session.execute(
        update(runs)
        .where(runs.c.batch_id == batch_id, runs.c.state == RUN_CLOSED)
        .values(
            state=RUN_SELECTING,
            seed=chosen,
            selection_started_at=moment,
            places=places or run.places,
            updated_at=moment,
        )
    )
    if moved.rowcount != 1:  # started by someone else in between
        return start_selection(session, batch_id, now, seed, places)
    return run_of(session, batch_id)


def _candidates(
    session: Session, batch_id: int, erased: ErasedParticipants | None
) -> list[Candidate]:
    """The batch's pending members, each with the reason the re-check leaves
    them out (None: eligible)."""
    other = aliased(memberships)
    selected_elsewhere = exists().where(
        other.c.applicant_id == memberships.c.applicant_id,
        other.c.batch_id != batch_id,
        other.c.result == RESULT_SELECTED,
    )
    rows = session.execute(
        select(
            memberships.c.id,
            applicants.c.nik,
            applicants.c.kk_number,
            applicants.c.status,
            applicants.c.policy_version,
            steps.c.status.label("nik_status"),
            selected_elsewhere.label("selected_elsewhere"),
        )
        .select_from(
            memberships.join(
                applicants, applicants.c.id == memberships.c.applicant_id
            ).outerjoin(
                steps,
                and_(
                    steps.c.applicant_id == applicants.c.id,
                    steps.c.step == STEP_NIK,
                ),
            )
        )
        .where(
            memberships.c.batch_id == batch_id,
            memberships.c.result == RESULT_PENDING,
        )
    ).all()
    gone = erased(session, [row.nik for row in rows]) if erased and rows else set()
    caps: dict[str, int | None] = {}
    found = []
    for row in rows:
        if row.policy_version not in caps:
            caps[row.policy_version] = load_policy(
                row.policy_version
            ).eligibility.kk_cap
        excluded = None
        if row.status == APPLICANT_REVOKED:
            excluded = EXCLUDED_WITHDRAWN
        elif (
            row.status == APPLICANT_PARTICIPANT
            or row.selected_elsewhere
            or row.nik in gone
        ):
            excluded = EXCLUDED_PARTICIPANT
        elif row.nik_status != STEP_DONE:
            excluded = EXCLUDED_NIK
        found.append(
            Candidate(row.id, row.kk_number, caps[row.policy_version], excluded)
        )
    return found


def _kk_participants(session: Session, batch_id: int) -> dict[str, int]:
    """Earlier participants per KK number, for the KK numbers of the batch."""
    other = aliased(memberships)
    in_batch = (
        select(applicants.c.kk_number)
        .join(memberships, memberships.c.applicant_id == applicants.c.id)
        .where(memberships.c.batch_id == batch_id)
    )
    selected_before = exists().where(
        other.c.applicant_id == applicants.c.id,
        other.c.batch_id != batch_id,
        other.c.result == RESULT_SELECTED,
    )
    rows = session.execute(
        select(applicants.c.kk_number, func.count())
        .where(
            applicants.c.kk_number.in_(in_batch),
            (applicants.c.status == APPLICANT_PARTICIPANT) | selected_before,
        )
        .group_by(applicants.c.kk_number)
    ).all()
    return {str(kk): int(n) for kk, n in rows}


def _selected_count(session: Session, batch_id: int) -> int:
    return int(
        session.execute(
            select(func.count()).where(
                memberships.c.batch_id == batch_id,
                memberships.c.result == RESULT_SELECTED,
            )
        ).scalar_one()
    )


def finish_selection(
    session: Session,
    batch_id: int,
    now: datetime | None = None,
    erased: ErasedParticipants | None = None,
) -> RunInfo:
    """Draw a `selecting` batch with its recorded seed and record every result
    (`erased`: finds the erased participants among the members' NIKs). A drawn
    batch is returned unchanged; refused when the selection was not started."""
    moment = now_or(now)
    allow_long_statements(session)
    state = session.execute(
        select(runs.c.state).where(runs.c.batch_id == batch_id).with_for_update()
    ).scalar_one_or_none()
    if state in DRAWN_STATES:
        return run_of(session, batch_id)
    if state != RUN_SELECTING:
        raise LifecycleError("not_closed")
    run = run_of(session, batch_id)
    assert run.seed is not None
    candidates = _candidates(session, batch_id, erased)
    already = _selected_count(session, batch_id)
    decisions = draw(
        candidates,
        run.seed,
        max(run.places - already, 0),
        _kk_participants(session, batch_id),
    )
    record_decisions(session, decisions, moment)
    eligible = sum(item.excluded is None for item in candidates)
    session.execute(
        update(runs)
        .where(runs.c.batch_id == batch_id, runs.c.state == RUN_SELECTING)
        .values(
            state=RUN_SELECTED,
            selected_at=moment,
            eligible_count=eligible,
            selected_count=_selected_count(session, batch_id),
            updated_at=moment,
        )
    )
    return run_of(session, batch_id)


def select_batch(
    sessions: Callable[[], AbstractContextManager[Session]],
    batch_id: int,
    now: datetime | None = None,
    erased: ErasedParticipants | None = None,
    seed: str | None = None,
    places: int | None = None,
) -> RunInfo:
    """Start (or resume) and finish the selection, each step in its own
    transaction (`sessions()` yields a session committed on leaving)."""
    with sessions() as session:
        start_selection(session, batch_id, now, seed, places)
    with sessions() as session:
        return finish_selection(session, batch_id, now, erased)
