"""Registration steps of an applicant: status, timestamps and failure reason.

A step has no row until it is first set, and reads as `not_started`. `set_step` is
one `INSERT ... ON CONFLICT DO UPDATE` (SQLite and PostgreSQL), so a worker and a
conversation setting the same step at once never collide. Timestamps: `started_at`
is the first time the step left `not_started`, `completed_at` the first time it
became `done` (kept while it stays done), `updated_at` the last change.
Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session

from bot.direct_sql import DirectStatement
from bot.registry._sql import dialect_insert, dialect_of, now_or
from bot.registry.models import (
    STEP_DONE,
    STEP_FAILED,
    STEP_NOT_STARTED,
    STEP_STATUSES,
    STEPS,
    RegistrationStep,
)
from bot.registry.records import StepInfo

steps_table = RegistrationStep.__table__
REASON_MAX = 32
DETAIL_MAX = 500


def set_step(
    session: Session,
    applicant_id: int,
    step: str,
    status: str,
    reason: str | None = None,
    detail: str | None = None,
    now: datetime | None = None,
) -> StepInfo:
    """Set where `step` stands; returns the step as stored.

    `status` is `pending`, `done` or `failed` (a step cannot go back to
    `not_started`). `reason` is a short code (e.g. `nik_not_found`) and is
    required exactly when the status is `failed`; `detail` is optional text for
    agents (no personal data). Any other transition is allowed: a failed NIK
    check may be retried (`pending`) and succeed (`done`).
    """
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}")
    if status not in STEP_STATUSES or status == STEP_NOT_STARTED:
        raise ValueError(f"cannot set a step to {status!r}")
    if (status == STEP_FAILED) != bool(reason):
        raise ValueError("a reason is required for failed, and only for failed")
    if reason is not None and len(reason) > REASON_MAX:
        raise ValueError(f"reason codes have at most {REASON_MAX} characters")
    if detail is not None and status != STEP_FAILED:
        raise ValueError("a detail only goes with a failure")
    moment = now_or(now)
    done = status == STEP_DONE
    _upsert(dialect_of(session), done).execute(
        session,
        {
            "applicant_id": applicant_id,
            "step": step,
            "status": status,
            "failure_reason": reason,
            "failure_detail": detail[:DETAIL_MAX] if detail else None,
            "started_at": moment,
            "updated_at": moment,
            "completed_at": moment if done else None,
        },
    )
    row = STEP.execute(session, {"applicant_id": applicant_id, "step": step}).one()
    return StepInfo.from_row(row)


# Built once: a registration sets a step on most of its turns, and building
# these statements cost more than running them.
STEP = DirectStatement(
    select(steps_table).where(
        steps_table.c.applicant_id == bindparam("applicant_id"),
        steps_table.c.step == bindparam("step"),
    )
)
STEPS_OF = DirectStatement(
    select(steps_table).where(steps_table.c.applicant_id == bindparam("applicant_id"))
)


@cache
def _upsert(dialect: str, done: bool) -> DirectStatement:
    """`set_step`'s upsert for a dialect, to a done step or another status."""
    statement = dialect_insert(dialect, steps_table)
    current, excluded = steps_table.c, statement.excluded
    return DirectStatement(
        statement.on_conflict_do_update(
            index_elements=["applicant_id", "step"],
            set_={
                "status": excluded.status,
                "failure_reason": excluded.failure_reason,
                "failure_detail": excluded.failure_detail,
                "started_at": func.coalesce(current.started_at, excluded.started_at),
                "updated_at": excluded.updated_at,
                "completed_at": case(
                    (
                        current.status == STEP_DONE,
                        func.coalesce(current.completed_at, excluded.completed_at),
                    ),
                    else_=excluded.completed_at,
                )
                if done
                else None,
            },
        ),
        values_from_parameters=True,  # the columns are the parameters given
    )


def applicant_steps(session: Session, applicant_id: int) -> dict[str, StepInfo]:
    """Every step of an applicant in funnel order (`not_started` when never set)."""
    rows = STEPS_OF.execute(session, {"applicant_id": applicant_id}).all()
    stored = {row.step: StepInfo.from_row(row) for row in rows}
    return {
        step: stored.get(step, StepInfo(step=step, status=STEP_NOT_STARTED))
        for step in STEPS
    }
