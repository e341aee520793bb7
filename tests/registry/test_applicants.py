"""Applicants: one per NIK ever, even under simultaneous requests; KK caps."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.registry import (
    AlreadyRegistered,
    ApplicantNotFound,
    KkCapReached,
    find_applicant,
    get_applicant,
    kk_registered_count,
    register_applicant,
    release_kk_slot,
    reserve_kk_slot,
    set_applicant_status,
)
from bot.registry.models import Applicant, Batch
from tests.registry.conftest import KK, concurrently, nik, register


def _count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Applicant)).scalar())


def test_register_stores_normalised_values(session: Session) -> None:
    verified = datetime(2020, 4, 11, 12, 5)
    applicant = register_applicant(
        session,
        nik="3174 0115 0890 0001",
        kk_number="3174-0101-0120-0001",
        full_name="  Siti Aminah ",
        birth_date=date(1990, 8, 15),
        policy_version="2020",
        email="Siti.Aminah@Gmail.com",
        email_verified_at=verified,
        phone="0812-3456-7890",
        now=datetime(2020, 4, 11, 12, 0),
    )
    session.commit()
    assert applicant.nik == nik(1)
    assert applicant.kk_number == "3174010101200001"
    assert applicant.full_name == "Siti Aminah"
    assert applicant.email == "siti.aminah@gmail.com"
    assert applicant.email_verified_at == verified
    assert applicant.phone == "+6281234567890"
    assert applicant.status == "registered"
    assert applicant.created_at == datetime(2020, 4, 11, 12, 0)
    assert get_applicant(session, applicant.id) == applicant
    assert find_applicant(session, nik(1)) == applicant
    assert find_applicant(session, "not a nik") is None
    assert kk_registered_count(session, KK) == 1
    shown = repr(applicant)
    assert nik(1) not in shown and "Siti" not in shown and "+62" not in shown


@pytest.mark.parametrize(
    "field, value",
    [
        ("nik", "317401150890001"),
        ("nik", "31740115089000x1"),
        ("kk_number", "123"),
        ("full_name", "   "),
        ("email", "siti aminah@gmail.com"),
        ("phone", "12345"),
    ],
)
def test_malformed_data_is_refused(session: Session, field: str, value: str) -> None:
    values = {
        "nik": nik(1),
        "kk_number": KK,
        "full_name": "Siti",
        "birth_date": date(1990, 8, 15),
        "policy_version": "2020",
        field: value,
    }
    with pytest.raises(ValueError):
        register_applicant(session, **values)  # type: ignore[arg-type]
    assert _count(session) == 0


def test_the_same_nik_twice_is_already_registered(session: Session) -> None:
    first = register(session, 1)
    with pytest.raises(AlreadyRegistered) as caught:
        register(session, 1)
    assert caught.value.applicant_id == first.id
    assert nik(1) not in str(caught.value)
    assert register(session, 2).id != first.id  # the session is still usable
    assert _count(session) == 2
    assert kk_registered_count(session, KK) == 2


def test_twenty_simultaneous_registrations_of_one_nik_make_one_applicant(
    sessions: sessionmaker,
) -> None:
    def attempt(index: int) -> int:
        with sessions() as session:
            applicant = register(session, 7, full_name=f"Orang {index}")
            return applicant.id

    results = concurrently(20, attempt)
    created = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, AlreadyRegistered)]
    assert len(created) == 1, results
    assert len(refused) == 19, results
    assert {r.applicant_id for r in refused} == set(created)
    with sessions() as session:
        assert _count(session) == 1
        assert kk_registered_count(session, KK) == 1  # counted once


def test_the_database_itself_refuses_a_second_nik(session: Session) -> None:
    register(session, 1)
    row = {
        "nik": nik(1),
        "kk_number": KK,
        "full_name": "Kembar",
        "birth_date": date(1990, 8, 15),
        "policy_version": "2020",
        "status": "registered",
    }
    with pytest.raises(IntegrityError):
        session.execute(insert(Applicant).values(**row))
    session.rollback()


def test_kk_cap_two_under_ten_simultaneous_registrations(
    sessions: sessionmaker,
) -> None:
    def attempt(index: int) -> int:
        with sessions() as session:
            return register(session, 100 + index, kk_cap=2).id

    results = concurrently(10, attempt)
    created = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, KkCapReached)]
    assert len(created) == 2, results
    assert len(refused) == 8, results
    assert all(r.cap == 2 for r in refused)
    with sessions() as session:
        assert _count(session) == 2  # refused registrations left no row behind
        assert kk_registered_count(session, KK) == 2


def test_kk_cap_two_under_ten_simultaneous_reservations(
    sessions: sessionmaker,
) -> None:
    def attempt(_: int) -> int:
        with sessions() as session:
            count = reserve_kk_slot(session, "3174010101209999", cap=2)
            session.commit()
            return count

    results = concurrently(10, attempt)
    assert sorted(r for r in results if isinstance(r, int)) == [1, 2], results
    assert sum(isinstance(r, KkCapReached) for r in results) == 8
    with sessions() as session:
        assert kk_registered_count(session, "3174010101209999") == 2


def test_kk_without_cap_counts_and_release_gives_a_place_back(
    session: Session,
) -> None:
    for serial in range(3):
        register(session, serial + 1)
    assert kk_registered_count(session, KK) == 3
    with pytest.raises(KkCapReached):
        register(session, 9, kk_cap=3)
    assert find_applicant(session, nik(9)) is None
    assert release_kk_slot(session, KK) == 2
    register(session, 9, kk_cap=3)
    assert kk_registered_count(session, KK) == 3
    assert release_kk_slot(session, "3174010101208888") == 0  # never below zero
    with pytest.raises(ValueError):
        reserve_kk_slot(session, KK, cap=0)


def test_status_of_participation(session: Session) -> None:
    applicant = register(session, 1)
    assert set_applicant_status(session, applicant.id, "participant").status == (
        "participant"
    )
    assert set_applicant_status(session, applicant.id, "revoked").status == "revoked"
    with pytest.raises(ValueError):
        set_applicant_status(session, applicant.id, "selected")
    with pytest.raises(ApplicantNotFound):
        set_applicant_status(session, applicant.id + 1000, "revoked")
    with pytest.raises(AlreadyRegistered):  # revoked stays: once in a lifetime
        register(session, 1)


def test_batch_check_constraints_hold_in_the_database(session: Session) -> None:
    opens, closes = datetime(2020, 4, 11, 12), datetime(2020, 4, 16, 9)
    for values in (
        {"quota": 10, "joined_count": 11, "opens_at": opens, "closes_at": closes},
        {"quota": 0, "joined_count": 0, "opens_at": opens, "closes_at": closes},
        {"quota": 10, "joined_count": 0, "opens_at": closes, "closes_at": opens},
    ):
        with pytest.raises(IntegrityError):
            session.execute(insert(Batch).values(number=1, **values))
        session.rollback()


def test_a_registration_racing_an_uncommitted_one_waits_and_is_refused(
    sessions: sessionmaker,
) -> None:
    """The check before the insert sees nothing; the unique key decides."""
    with sessions() as first:
        winner = register_applicant(
            first,
            nik=nik(5),
            kk_number=KK,
            full_name="Pertama",
            birth_date=date(1990, 8, 15),
            policy_version="2020",
        )

        def second(_: int) -> int:
            with sessions() as other:
                return register(other, 5).id

        outcome: list[object] = []
        thread = threading.Thread(
            target=lambda: outcome.extend(concurrently(1, second))
        )
        thread.start()
        time.sleep(0.5)  # the second insert is now waiting for the first
        assert thread.is_alive()
        first.commit()
        thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], AlreadyRegistered)
    assert outcome[0].applicant_id == winner.id
