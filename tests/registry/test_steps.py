"""Registration steps: transitions, timestamps, failure reasons, the snapshot."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.registry import StepInfo, applicant_steps, set_step
from bot.registry.models import STEPS
from tests.registry.conftest import concurrently, register

T0 = datetime(2020, 4, 11, 12, 0)


def test_a_new_applicant_has_every_step_not_started(session: Session) -> None:
    applicant = register(session, 1)
    snapshot = applicant_steps(session, applicant.id)
    assert list(snapshot) == list(STEPS)
    assert all(
        s == StepInfo(step=s.step, status="not_started") for s in snapshot.values()
    )


def test_transitions_keep_first_start_and_completion(session: Session) -> None:
    applicant = register(session, 1)
    pending = set_step(session, applicant.id, "nik", "pending", now=T0)
    assert (pending.status, pending.started_at, pending.completed_at) == (
        "pending",
        T0,
        None,
    )
    failed = set_step(
        session,
        applicant.id,
        "nik",
        "failed",
        reason="nik_not_found",
        detail="Dukcapil: data tidak ditemukan",
        now=T0 + timedelta(minutes=1),
    )
    assert failed.failure_reason == "nik_not_found"
    assert failed.failure_detail == "Dukcapil: data tidak ditemukan"
    assert failed.started_at == T0
    retried = set_step(session, applicant.id, "nik", "pending", now=T0 + timedelta(2))
    assert retried.failure_reason is None and retried.failure_detail is None
    done = set_step(session, applicant.id, "nik", "done", now=T0 + timedelta(3))
    again = set_step(session, applicant.id, "nik", "done", now=T0 + timedelta(4))
    assert done.completed_at == again.completed_at == T0 + timedelta(3)
    assert again.updated_at == T0 + timedelta(4)
    assert again.started_at == T0
    set_step(session, applicant.id, "email", "done", now=T0)
    session.commit()
    snapshot = applicant_steps(session, applicant.id)
    assert {s: v.status for s, v in snapshot.items()} == {
        "email": "done",
        "nik": "done",
        "photo": "not_started",
        "test": "not_started",
        "batch": "not_started",
        "selection": "not_started",
    }
    reopened = set_step(
        session, applicant.id, "email", "pending", now=T0 + timedelta(5)
    )
    assert reopened.completed_at is None


@pytest.mark.parametrize(
    "step, status, reason, detail",
    [
        ("ktp", "pending", None, None),
        ("nik", "not_started", None, None),
        ("nik", "lost", None, None),
        ("nik", "failed", None, None),
        ("nik", "pending", "nik_not_found", None),
        ("nik", "done", None, "detail without failure"),
        ("nik", "failed", "x" * 33, None),
    ],
)
def test_invalid_step_updates_are_refused(
    session: Session, step: str, status: str, reason: str | None, detail: str | None
) -> None:
    applicant = register(session, 1)
    with pytest.raises(ValueError):
        set_step(session, applicant.id, step, status, reason=reason, detail=detail)


def test_the_database_refuses_a_failure_without_reason(session: Session) -> None:
    applicant = register(session, 1)
    with pytest.raises(IntegrityError):
        session.execute(
            text(
                "INSERT INTO registration_step (applicant_id, step, status, updated_at)"
                " VALUES (:id, 'nik', 'failed', :now)"
            ),
            {"id": applicant.id, "now": T0},
        )
    session.rollback()


def test_simultaneous_updates_of_one_step_leave_one_row(sessions: sessionmaker) -> None:
    with sessions() as session:
        applicant_id = register(session, 1).id

    def update(index: int) -> StepInfo:
        with sessions() as session:
            status = "done" if index % 2 else "pending"
            step = set_step(session, applicant_id, "nik", status)
            session.commit()
            return step

    results = concurrently(10, update)
    assert all(isinstance(r, StepInfo) for r in results), results
    with sessions() as session:
        rows = session.execute(
            text("SELECT count(*) FROM registration_step WHERE applicant_id = :id"),
            {"id": applicant_id},
        ).scalar()
        assert rows == 1
        assert applicant_steps(session, applicant_id)["nik"].status in {
            "done",
            "pending",
        }
