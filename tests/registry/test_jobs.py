"""Verification jobs: one active job per check, leases never shared by workers."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.registry import (
    JobInfo,
    claim_jobs,
    complete_job,
    enqueue_job,
    fail_job,
    get_job,
    jobs_of,
    retry_job,
)
from tests.registry.conftest import concurrently, register

T0 = datetime(2020, 4, 11, 12, 0)


def test_enqueue_is_idempotent_while_a_job_is_active(session: Session) -> None:
    applicant = register(session, 1)
    job = enqueue_job(session, applicant.id, "nik", now=T0)
    assert (job.status, job.attempts, job.next_attempt_at) == ("queued", 0, T0)
    assert enqueue_job(session, applicant.id, "nik", now=T0 + timedelta(1)) == job
    email = enqueue_job(session, applicant.id, "email", now=T0)
    assert email.id != job.id
    session.commit()
    [claimed] = claim_jobs(session, "w1", kinds=["nik"], now=T0)
    assert enqueue_job(session, applicant.id, "nik").id == job.id  # still running
    assert complete_job(session, claimed.id, "w1", "nik_valid", now=T0)
    session.commit()
    fresh = enqueue_job(session, applicant.id, "nik", now=T0 + timedelta(1))
    assert fresh.id != job.id  # a finished job allows a new check
    assert [j.status for j in jobs_of(session, applicant.id, "nik")] == [
        "done",
        "queued",
    ]


def test_two_workers_never_claim_the_same_job(sessions: sessionmaker) -> None:
    with sessions() as session:
        for serial in range(1, 41):
            enqueue_job(session, register(session, serial).id, "nik", now=T0)
        session.commit()

    def worker(index: int) -> list[int]:
        taken: list[int] = []
        while True:
            with sessions() as session:
                batch = claim_jobs(session, f"w{index}", limit=3, now=T0)
                session.commit()
            if not batch:
                return taken
            taken.extend(job.id for job in batch)

    results = concurrently(2, worker)
    assert all(isinstance(r, list) for r in results), results
    first, second = results
    assert not set(first) & set(second)
    assert len(first) + len(second) == 40
    with sessions() as session:
        jobs = [get_job(session, job_id) for job_id in first + second]
        assert all(j is not None and j.attempts == 1 for j in jobs)


def test_a_lost_lease_is_reclaimed_and_the_old_worker_cannot_finish(
    session: Session,
) -> None:
    applicant = register(session, 1)
    job = enqueue_job(session, applicant.id, "nik", now=T0)
    [first] = claim_jobs(session, "w1", lease_seconds=30, now=T0)
    session.commit()
    assert (first.status, first.lease_owner, first.attempts) == ("running", "w1", 1)
    assert first.lease_until == T0 + timedelta(seconds=30)
    assert claim_jobs(session, "w2", now=T0 + timedelta(seconds=10)) == []
    [again] = claim_jobs(session, "w2", now=T0 + timedelta(seconds=31))
    session.commit()
    assert (again.id, again.lease_owner, again.attempts) == (job.id, "w2", 2)
    assert not complete_job(session, job.id, "w1", "nik_valid")  # lease lost
    assert complete_job(session, job.id, "w2", "nik_valid", now=T0 + timedelta(1))
    session.commit()
    done = get_job(session, job.id)
    assert done is not None
    assert (done.status, done.result_code, done.lease_owner) == (
        "done",
        "nik_valid",
        None,
    )
    assert done.finished_at == T0 + timedelta(1)
    assert not complete_job(session, job.id, "w2", "nik_valid")  # already finished


def test_retry_waits_until_due_and_failure_is_final(session: Session) -> None:
    applicant = register(session, 1)
    job = enqueue_job(session, applicant.id, "nik", now=T0)
    claim_jobs(session, "w1", now=T0)
    later = T0 + timedelta(minutes=5)
    assert retry_job(session, job.id, "w1", "Dukcapil timeout", later, now=T0)
    session.commit()
    queued = get_job(session, job.id)
    assert queued is not None
    assert (queued.status, queued.last_error, queued.next_attempt_at) == (
        "queued",
        "Dukcapil timeout",
        later,
    )
    assert claim_jobs(session, "w1", now=later - timedelta(seconds=1)) == []
    [claimed] = claim_jobs(session, "w1", now=later)
    assert claimed.attempts == 2
    assert fail_job(session, job.id, "w1", "gave up after 2 attempts", "unavailable")
    session.commit()
    failed = get_job(session, job.id)
    assert failed is not None
    assert (failed.status, failed.result_code) == ("failed", "unavailable")
    assert claim_jobs(session, "w1", now=later + timedelta(days=1)) == []


def test_claim_filters_by_kind_and_orders_by_due_time(session: Session) -> None:
    first, second = register(session, 1), register(session, 2)
    late = enqueue_job(session, first.id, "nik", run_at=T0 + timedelta(1), now=T0)
    early = enqueue_job(session, second.id, "nik", now=T0)
    enqueue_job(session, first.id, "email", now=T0)
    session.commit()
    first_claim: list[JobInfo] = claim_jobs(
        session, "w1", limit=1, kinds=["nik"], now=T0 + timedelta(2)
    )
    assert [job.id for job in first_claim] == [early.id]  # due first, id later
    rest = claim_jobs(session, "w1", kinds=["nik"], now=T0 + timedelta(2))
    assert [job.id for job in rest] == [late.id]
