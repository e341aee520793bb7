"""Batches: never over quota under 50 simultaneous joins, idempotent, windows."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.policy.programme import load_policy
from bot.registry import (
    AlreadyInBatch,
    ApplicantNotFound,
    BatchClosed,
    BatchFull,
    BatchNotFound,
    MembershipInfo,
    NotEligible,
    batch_by_number,
    ensure_batch,
    ensure_policy_batches,
    get_batch,
    join_batch,
    memberships_of,
    next_batch,
    open_batches,
    pending_membership,
    record_selection,
    set_applicant_status,
)
from bot.registry.models import BatchMembership
from tests.registry.conftest import concurrently, register

OPENS = datetime(2020, 4, 11, 12, 0)  # 19.00 WIB
CLOSES = datetime(2020, 4, 16, 9, 0)  # 16.00 WIB
DURING = datetime(2020, 4, 12, 3, 0)


def _batch(
    session: Session, number: int = 1, quota: int = 10, *, long: bool = False
) -> int:
    """Batch `number`, a week after the previous one (or all open for a month)."""
    shift = timedelta(days=0 if long else 7 * (number - 1))
    closes = CLOSES + timedelta(days=30) if long else CLOSES + shift
    batch = ensure_batch(session, number, OPENS + shift, closes, quota)
    session.commit()
    return batch.id


def _members(session: Session, batch_id: int) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(BatchMembership)
            .where(BatchMembership.batch_id == batch_id)
        ).scalar()
    )


def test_fifty_simultaneous_joins_fill_a_quota_of_ten_exactly(
    sessions: sessionmaker,
) -> None:
    with sessions() as session:
        batch_id = _batch(session, quota=10)
        applicants = [register(session, serial).id for serial in range(1, 51)]

    def attempt(index: int) -> MembershipInfo:
        with sessions() as session:
            joined = join_batch(session, applicants[index], batch_id, now=DURING)
            session.commit()
            return joined

    results = concurrently(50, attempt)
    joined = [r for r in results if isinstance(r, MembershipInfo)]
    full = [r for r in results if isinstance(r, BatchFull)]
    assert len(joined) == 10, results
    assert len(full) == 40, results
    with sessions() as session:
        assert get_batch(session, batch_id).joined_count == 10
        assert _members(session, batch_id) == 10
        assert get_batch(session, batch_id).places_left == 0
        assert open_batches(session, DURING) == []


def test_joining_twice_returns_the_same_membership_and_counts_once(
    session: Session,
) -> None:
    batch_id = _batch(session)
    applicant = register(session, 1)
    first = join_batch(session, applicant.id, batch_id, now=DURING)
    session.commit()
    again = join_batch(session, applicant.id, batch_id, now=DURING + timedelta(1))
    session.commit()
    assert again == first
    assert first.result == "pending" and first.batch_number == 1
    assert first.joined_at == DURING
    assert get_batch(session, batch_id).joined_count == 1


def test_one_applicant_joining_from_ten_places_at_once_counts_once(
    sessions: sessionmaker,
) -> None:
    with sessions() as session:
        batch_id = _batch(session)
        applicant_id = register(session, 1).id

    def attempt(_: int) -> int:
        with sessions() as session:
            joined = join_batch(session, applicant_id, batch_id, now=DURING)
            session.commit()
            return joined.id

    results = concurrently(10, attempt)
    assert all(isinstance(r, int) for r in results), results
    assert len(set(results)) == 1
    with sessions() as session:
        assert get_batch(session, batch_id).joined_count == 1
        assert _members(session, batch_id) == 1


@pytest.mark.parametrize(
    "moment, not_yet_open",
    [
        (OPENS - timedelta(seconds=1), True),
        (CLOSES, False),
        (CLOSES + timedelta(days=1), False),
    ],
)
def test_a_batch_outside_its_window_is_refused(
    session: Session, moment: datetime, not_yet_open: bool
) -> None:
    batch_id = _batch(session)
    applicant = register(session, 1)
    with pytest.raises(BatchClosed) as caught:
        join_batch(session, applicant.id, batch_id, now=moment)
    assert caught.value.not_yet_open is not_yet_open
    assert caught.value.batch_number == 1
    session.commit()
    assert get_batch(session, batch_id).joined_count == 0
    assert memberships_of(session, applicant.id) == []
    assert join_batch(session, applicant.id, batch_id, now=OPENS).batch_id == batch_id


def test_full_batch_unknown_batch_and_ineligible_applicants(session: Session) -> None:
    batch_id = _batch(session, quota=1)
    first, second, revoked = (register(session, n) for n in (1, 2, 3))
    join_batch(session, first.id, batch_id, now=DURING)
    with pytest.raises(BatchFull):
        join_batch(session, second.id, batch_id, now=DURING)
    with pytest.raises(BatchNotFound):
        join_batch(session, second.id, batch_id + 100, now=DURING)
    with pytest.raises(ApplicantNotFound):
        join_batch(session, revoked.id + 100, batch_id, now=DURING)
    set_applicant_status(session, revoked.id, "revoked")
    with pytest.raises(NotEligible) as caught:
        join_batch(session, revoked.id, batch_id, now=DURING)
    assert caught.value.status == "revoked"
    session.commit()
    assert get_batch(session, batch_id).joined_count == 1


def test_one_pending_batch_at_a_time_then_the_next_after_not_selected(
    session: Session,
) -> None:
    first_id = _batch(session, 1, long=True)
    second_id = _batch(session, 2, long=True)
    applicant = register(session, 1)
    join_batch(session, applicant.id, first_id, now=DURING)
    with pytest.raises(AlreadyInBatch) as caught:
        join_batch(session, applicant.id, second_id, now=DURING)
    assert caught.value.batch_number == 1
    assert get_batch(session, second_id).joined_count == 0
    decided = record_selection(
        session, applicant.id, first_id, "not_selected", now=CLOSES
    )
    assert (decided.result, decided.decided_at) == ("not_selected", CLOSES)
    assert record_selection(session, applicant.id, first_id, "selected") == decided
    assert pending_membership(session, applicant.id) is None
    follow_up = next_batch(session, 1)
    assert follow_up is not None and follow_up.id == second_id
    join_batch(session, applicant.id, second_id, now=DURING)
    session.commit()
    assert [m.batch_number for m in memberships_of(session, applicant.id)] == [1, 2]
    pending = pending_membership(session, applicant.id)
    assert pending is not None and pending.batch_number == 2
    with pytest.raises(ValueError):
        record_selection(session, applicant.id, first_id, "pending")


def test_the_database_allows_one_pending_membership_per_applicant(
    session: Session,
) -> None:
    first_id, second_id = _batch(session, 1, long=True), _batch(session, 2, long=True)
    applicant = register(session, 1)
    row = {"applicant_id": applicant.id, "joined_at": DURING, "result": "pending"}
    session.execute(insert(BatchMembership).values(batch_id=first_id, **row))
    with pytest.raises(IntegrityError):
        session.execute(insert(BatchMembership).values(batch_id=second_id, **row))
    session.rollback()


def test_open_batches_next_batch_and_the_policy_schedule(session: Session) -> None:
    waves = ensure_policy_batches(session, load_policy("2020"))
    assert [(w.number, w.quota) for w in waves] == [(1, 164000)]
    assert waves[0].opens_at == OPENS  # 19.00 WIB stored as 12.00 UTC
    assert waves[0].closes_at == CLOSES
    assert ensure_policy_batches(session, load_policy("2020")) == waves  # kept
    _batch(session, 2, quota=1)
    _batch(session, 3)
    session.commit()
    assert [b.number for b in open_batches(session, DURING)] == [1]
    assert [b.number for b in open_batches(session, DURING + timedelta(7))] == [2]
    full = register(session, 1)
    join_batch(session, full.id, _batch(session, 2), now=DURING + timedelta(7))
    assert open_batches(session, DURING + timedelta(7)) == []
    assert next_batch(session, 1) == batch_by_number(session, 2)
    assert next_batch(session, 3) is None
    with pytest.raises(ValueError):
        ensure_batch(session, 4, CLOSES, OPENS, 10)
