"""Verification jobs (NIK at Dukcapil, e-mail): a queue in the database with leases.

A worker claims due jobs by taking their lease with a conditional `UPDATE` (as the
gateway's outbox does); PostgreSQL also skips rows other workers hold
(`FOR UPDATE SKIP LOCKED`). Two workers never hold the same job: the second
`UPDATE` finds the job already running under a live lease. A worker that dies
loses its jobs when the lease runs out, or (given `stale_before`) as soon as
its process's heartbeat is stale (`bot.leases`), and another claims them again.
Each claim counts an attempt, so the attempt number is the claim's fencing
token: `complete_job`, `fail_job` and `retry_job` given `attempt` change nothing
once a later claim took the job.

Transactions: `enqueue_job` joins the caller's transaction (enqueue with the data
it checks). `claim_jobs` must be committed at once, the check run outside any
transaction, and the outcome stored in a new one (`complete_job`, `fail_job`,
`retry_job`), which only succeed while the caller still owns the lease.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from bot import leases
from bot.direct_sql import DirectStatement
from bot.insert_ignoring import insert_ignoring_conflict
from bot.registry._sql import dialect_of, now_or
from bot.registry.models import (
    JOB_DONE,
    JOB_FAILED,
    JOB_KINDS,
    JOB_QUEUED,
    JOB_RUNNING,
    VerificationJob,
)
from bot.registry.records import JobInfo

jobs = VerificationJob.__table__
# Built once (an applicant's checks are read on most turns about a
# registration): building a statement cost more than running it.
JOB = DirectStatement(select(jobs).where(jobs.c.id == bindparam("job_id")))
_JOBS_OF = select(jobs).where(jobs.c.applicant_id == bindparam("applicant_id"))
JOBS_OF_KIND = DirectStatement(
    _JOBS_OF.where(jobs.c.kind == bindparam("kind")).order_by(jobs.c.id)
)
JOBS_OF = DirectStatement(_JOBS_OF.order_by(jobs.c.id))
ACTIVE_JOB = DirectStatement(
    select(jobs).where(
        jobs.c.applicant_id == bindparam("applicant_id"),
        jobs.c.kind == bindparam("kind"),
        jobs.c.status.in_((JOB_QUEUED, JOB_RUNNING)),
    )
)
OWNER_MAX = 64
ERROR_MAX = 2000
RESULT_CODE_MAX = 32


def enqueue_job(
    session: Session,
    applicant_id: int,
    kind: str,
    run_at: datetime | None = None,
    now: datetime | None = None,
) -> JobInfo:
    """Queue a check for an applicant; the active job if one is already queued
    or running (`uq_verification_job_active`: never two at once)."""
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    moment = now_or(now)
    insert_ignoring_conflict(
        session,
        jobs,
        {
            "applicant_id": applicant_id,
            "kind": kind,
            "status": JOB_QUEUED,
            "attempts": 0,
            "next_attempt_at": now_or(run_at) if run_at else moment,
            "created_at": moment,
            "updated_at": moment,
        },
    )
    row = ACTIVE_JOB.execute(
        session, {"applicant_id": applicant_id, "kind": kind}
    ).one()
    return JobInfo.from_row(row)


def get_job(session: Session, job_id: int) -> JobInfo | None:
    """The job with this id, if any."""
    row = JOB.execute(session, {"job_id": job_id}).one_or_none()
    return None if row is None else JobInfo.from_row(row)


def jobs_of(
    session: Session, applicant_id: int, kind: str | None = None
) -> list[JobInfo]:
    """An applicant's jobs, oldest first."""
    if kind is None:
        rows = JOBS_OF.execute(session, {"applicant_id": applicant_id}).all()
    else:
        rows = JOBS_OF_KIND.execute(
            session, {"applicant_id": applicant_id, "kind": kind}
        ).all()
    return [JobInfo.from_row(row) for row in rows]


def _claimable(
    moment: datetime, stale_before: datetime | None = None, me: str | None = None
) -> Any:
    lost = leases.lease_free(
        jobs.c.lease_owner, jobs.c.lease_until, moment, stale_before, me
    )
    return or_(
        and_(jobs.c.status == JOB_QUEUED, jobs.c.next_attempt_at <= moment),
        and_(jobs.c.status == JOB_RUNNING, lost),
    )


def claim_jobs(
    session: Session,
    owner: str,
    *,
    limit: int = 10,
    lease_seconds: float = 60.0,
    kinds: Collection[str] | None = None,
    now: datetime | None = None,
    stale_before: datetime | None = None,
) -> list[JobInfo]:
    """Take the lease of up to `limit` due jobs (queued and due, or whose lease
    ran out, or whose owner's heartbeat is older than `stale_before`), oldest due
    first; each claim counts one attempt (the claim's fencing token).

    Commit right after: the lease is what keeps other workers away.
    """
    if not owner or len(owner) > OWNER_MAX:
        raise ValueError(f"owner must be 1 to {OWNER_MAX} characters")
    moment = now_or(now)
    until = moment + timedelta(seconds=lease_seconds)
    due = (
        select(jobs.c.id)
        .where(_claimable(moment, stale_before, owner))
        .order_by(jobs.c.next_attempt_at, jobs.c.id)
        .limit(limit)
    )
    if kinds is not None:
        due = due.where(jobs.c.kind.in_(list(kinds)))
    if dialect_of(session) == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed: list[int] = []
    for job_id in session.execute(due).scalars().all():
        result = session.execute(
            update(jobs)
            .where(jobs.c.id == job_id, _claimable(moment, stale_before, owner))
            .values(
                status=JOB_RUNNING,
                lease_owner=owner,
                lease_until=until,
                attempts=jobs.c.attempts + 1,
                updated_at=moment,
            )
        )
        if result.rowcount == 1:
            claimed.append(int(job_id))
    if not claimed:
        return []
    rows = session.execute(
        select(jobs).where(jobs.c.id.in_(claimed)).order_by(jobs.c.id)
    ).all()
    return [JobInfo.from_row(row) for row in rows]


def _finish(
    session: Session,
    job_id: int,
    owner: str,
    values: dict[str, Any],
    attempt: int | None,
) -> bool:
    result = session.execute(
        _finishing(tuple(values), attempt is not None),
        {
            "job_id": job_id,
            "owner": owner,
            "attempt": attempt,
            **{f"new_{column}": value for column, value in values.items()},
        },
    )
    return bool(result.rowcount == 1)


@cache
def _finishing(columns: tuple[str, ...], fenced: bool) -> Any:
    """`_finish`'s UPDATE for these columns (built once per caller's kind of
    end), fenced by the claim's attempt number or not."""
    guard = [
        jobs.c.id == bindparam("job_id"),
        jobs.c.status == JOB_RUNNING,
        jobs.c.lease_owner == bindparam("owner"),
    ]
    if fenced:
        guard.append(jobs.c.attempts == bindparam("attempt"))
    return (
        update(jobs)
        .where(*guard)
        .values(
            lease_owner=None,
            lease_until=None,
            **{column: bindparam(f"new_{column}") for column in columns},
        )
    )


def complete_job(
    session: Session,
    job_id: int,
    owner: str,
    result_code: str,
    now: datetime | None = None,
    attempt: int | None = None,
) -> bool:
    """Store a job's answer (e.g. `nik_valid`, `nik_not_found`); False when the
    lease was lost (another worker has the job now: drop this result). `attempt`:
    the claim's attempt number, the fence against a later claim of this owner."""
    moment = now_or(now)
    return _finish(
        session,
        job_id,
        owner,
        {
            "status": JOB_DONE,
            "result_code": result_code[:RESULT_CODE_MAX],
            "last_error": None,
            "finished_at": moment,
            "updated_at": moment,
        },
        attempt,
    )


def fail_job(
    session: Session,
    job_id: int,
    owner: str,
    error: str,
    result_code: str | None = None,
    now: datetime | None = None,
    attempt: int | None = None,
) -> bool:
    """Give a job up for good (attempts exhausted, permanent error); False when
    the lease was lost."""
    moment = now_or(now)
    return _finish(
        session,
        job_id,
        owner,
        {
            "status": JOB_FAILED,
            "result_code": result_code[:RESULT_CODE_MAX] if result_code else None,
            "last_error": error[:ERROR_MAX],
            "finished_at": moment,
            "updated_at": moment,
        },
        attempt,
    )


def retry_job(
    session: Session,
    job_id: int,
    owner: str,
    error: str,
    retry_at: datetime,
    now: datetime | None = None,
    attempt: int | None = None,
) -> bool:
    """Put a job back in the queue until `retry_at` (backoff is the caller's);
    False when the lease was lost."""
    return _finish(
        session,
        job_id,
        owner,
        {
            "status": JOB_QUEUED,
            "next_attempt_at": now_or(retry_at),
            "last_error": error[:ERROR_MAX],
            "updated_at": now_or(now),
        },
        attempt,
    )
