"""Registry additions for the chat registration: correcting an applicant's data,
the e-mail a chat proved, and the next batch to open."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from bot.registry import (
    AlreadyRegistered,
    ApplicantNotFound,
    KkCapReached,
    correct_applicant,
    create_email_code,
    ensure_batch,
    get_applicant,
    get_or_create_identity,
    kk_registered_count,
    proven_email,
    register_applicant,
    upcoming_batch,
    verify_email_code,
)
from tests.registry.conftest import KK, nik, register

SECRET = b"test-correction-secret-0123456789"
T0 = datetime(2026, 11, 20, 3, 0)
OTHER_KK = "3174010101200002"
BORN = date(1990, 8, 16)


def correct(session: Session, applicant_id: int, **changes: object) -> None:
    """Correct applicant `applicant_id` (NIK 7, other KK, new name unless given)."""
    values: dict[str, object] = {
        "nik": nik(7),
        "kk_number": OTHER_KK,
        "full_name": "Siti Rahayu Putri",
        "birth_date": BORN,
        "now": T0,
        **changes,
    }
    correct_applicant(session, applicant_id, **values)  # type: ignore[arg-type]


# --- correct_applicant -------------------------------------------------------------


def test_a_correction_replaces_the_identity_data(session: Session) -> None:
    first = register(session, 1, email="siti@gmail.com", phone="+6281234567890")

    correct(session, first.id)
    session.commit()

    applicant = get_applicant(session, first.id)
    assert (applicant.nik, applicant.kk_number) == (nik(7), OTHER_KK)
    assert (applicant.full_name, applicant.birth_date) == ("Siti Rahayu Putri", BORN)
    assert (applicant.email, applicant.phone) == ("siti@gmail.com", "+6281234567890")
    assert applicant.status == first.status and applicant.id == first.id


def test_a_new_kk_moves_the_place_on_the_family_card(session: Session) -> None:
    first = register(session, 1)
    assert kk_registered_count(session, KK) == 1

    correct(session, first.id)
    session.commit()

    assert kk_registered_count(session, KK) == 0
    assert kk_registered_count(session, OTHER_KK) == 1


def test_the_same_kk_keeps_its_count(session: Session) -> None:
    first = register(session, 1)

    correct(session, first.id, kk_number=KK, kk_cap=1)
    session.commit()

    assert kk_registered_count(session, KK) == 1
    assert get_applicant(session, first.id).nik == nik(7)


def test_keeping_the_own_nik_is_no_conflict(session: Session) -> None:
    first = register(session, 1)

    correct(session, first.id, nik=nik(1), full_name="Siti R")
    session.commit()

    assert get_applicant(session, first.id).full_name == "Siti R"


def test_separators_are_removed(session: Session) -> None:
    first = register(session, 1)
    spaced = f"{nik(7)[:6]}.{nik(7)[6:12]}-{nik(7)[12:]}"

    correct(session, first.id, nik=spaced, kk_number=f" {OTHER_KK[:8]} {OTHER_KK[8:]}")
    session.commit()

    applicant = get_applicant(session, first.id)
    assert (applicant.nik, applicant.kk_number) == (nik(7), OTHER_KK)


def test_a_full_new_kk_refuses_and_changes_nothing(session: Session) -> None:
    first = register(session, 1)
    register(session, 2, kk=OTHER_KK)

    with pytest.raises(KkCapReached):
        correct(session, first.id, kk_cap=1)
    session.commit()

    applicant = get_applicant(session, first.id)
    assert (applicant.nik, applicant.kk_number) == (nik(1), KK)
    assert kk_registered_count(session, KK) == 1
    assert kk_registered_count(session, OTHER_KK) == 1


def test_a_nik_of_someone_else_refuses_and_changes_nothing(session: Session) -> None:
    first = register(session, 1)
    other = register(session, 7)

    with pytest.raises(AlreadyRegistered) as refused:
        correct(session, first.id)
    session.commit()

    assert refused.value.applicant_id == other.id
    applicant = get_applicant(session, first.id)
    assert (applicant.nik, applicant.kk_number) == (nik(1), KK)
    assert kk_registered_count(session, OTHER_KK) == 0
    assert kk_registered_count(session, KK) == 2


@pytest.mark.parametrize(
    "changes",
    [
        {"full_name": "  "},
        {"full_name": "x" * 129},
        {"nik": "317401"},
        {"kk_number": "abc"},
    ],
    ids=["blank-name", "long-name", "short-nik", "letters-kk"],
)
def test_malformed_data_is_refused(session: Session, changes: dict[str, str]) -> None:
    first = register(session, 1)

    with pytest.raises(ValueError):
        correct(session, first.id, **changes)
    session.commit()

    assert get_applicant(session, first.id).nik == nik(1)
    assert kk_registered_count(session, OTHER_KK) == 0


def test_an_unknown_applicant_is_refused(session: Session) -> None:
    with pytest.raises(ApplicantNotFound):
        correct(session, 999)


# --- proven_email ------------------------------------------------------------------


def identity(session: Session, external_id: str = "+6281234567890") -> int:
    """An SMS identity (committed)."""
    found = get_or_create_identity(session, "sms", external_id)
    session.commit()
    return found.id


def prove(
    session: Session,
    email: str,
    *,
    identity_id: int,
    applicant_id: int | None = None,
    at: datetime = T0,
) -> None:
    """Send a code for `email` and type it back at `at` (committed)."""
    issued = create_email_code(
        session,
        SECRET,
        email,
        identity_id=identity_id,
        applicant_id=applicant_id,
        now=at - timedelta(minutes=1),
    )
    check = verify_email_code(
        session,
        SECRET,
        issued.code,
        identity_id=identity_id,
        applicant_id=applicant_id,
        now=at,
    )
    assert check.ok
    session.commit()


def test_nothing_is_proven_without_codes(session: Session) -> None:
    assert proven_email(session, identity(session), "siti@gmail.com") is None


def test_a_code_sent_but_not_typed_proves_nothing(session: Session) -> None:
    owner = identity(session)
    create_email_code(session, SECRET, "siti@gmail.com", identity_id=owner, now=T0)
    session.commit()

    assert proven_email(session, owner, "siti@gmail.com") is None


def test_a_typed_code_proves_its_address_when_typed(session: Session) -> None:
    owner = identity(session)
    prove(session, "siti@gmail.com", identity_id=owner, at=T0)

    assert proven_email(session, owner, "siti@gmail.com") == T0
    assert proven_email(session, owner, " Siti@Gmail.com ") == T0
    assert proven_email(session, owner, "budi@gmail.com") is None


def test_the_latest_proof_counts(session: Session) -> None:
    owner = identity(session)
    prove(session, "siti@gmail.com", identity_id=owner, at=T0)
    later = T0 + timedelta(hours=2)
    prove(session, "siti@gmail.com", identity_id=owner, at=later)

    assert proven_email(session, owner, "siti@gmail.com") == later


def test_a_proof_belongs_to_its_identity(session: Session) -> None:
    owner = identity(session)
    stranger = identity(session, "+6281298765432")
    prove(session, "siti@gmail.com", identity_id=owner)

    assert proven_email(session, stranger, "siti@gmail.com") is None


def test_a_link_code_proves_no_registration_email(session: Session) -> None:
    owner = identity(session)
    applicant = register(session, 1, email="siti@gmail.com")
    prove(session, "siti@gmail.com", identity_id=owner, applicant_id=applicant.id)

    assert proven_email(session, owner, "siti@gmail.com") is None


def test_an_invalid_address_is_never_proven(session: Session) -> None:
    owner = identity(session)
    prove(session, "siti@gmail.com", identity_id=owner)

    assert proven_email(session, owner, "siti@@gmail.com") is None
    assert proven_email(session, owner, "") is None


def test_a_proof_registers_with_its_moment(session: Session) -> None:
    owner = identity(session)
    prove(session, "siti@gmail.com", identity_id=owner)
    proven_at = proven_email(session, owner, "siti@gmail.com")

    applicant = register_applicant(
        session,
        nik=nik(1),
        kk_number=KK,
        full_name="Siti",
        birth_date=BORN,
        policy_version="2020",
        email="siti@gmail.com",
        email_verified_at=proven_at,
        now=T0,
    )

    assert applicant.email_verified_at == T0


# --- upcoming_batch ----------------------------------------------------------------


def batch(session: Session, number: int, opens: datetime, days: int = 10) -> None:
    """Store batch `number` open for `days` days from `opens` (committed)."""
    ensure_batch(session, number, opens, opens + timedelta(days=days), 100)
    session.commit()


def test_no_batch_means_none_upcoming(session: Session) -> None:
    assert upcoming_batch(session, T0) is None


def test_open_and_closed_batches_are_not_upcoming(session: Session) -> None:
    batch(session, 1, T0 - timedelta(days=30))  # closed
    batch(session, 2, T0 - timedelta(days=1))  # open
    batch(session, 3, T0)  # opens right now: open, not upcoming

    assert upcoming_batch(session, T0) is None


def test_the_first_batch_to_open_is_upcoming(session: Session) -> None:
    batch(session, 2, T0 - timedelta(days=1))
    batch(session, 5, T0 + timedelta(days=40))
    batch(session, 4, T0 + timedelta(days=20))
    batch(session, 3, T0 + timedelta(days=30))

    found = upcoming_batch(session, T0)

    assert found is not None and found.number == 4


def test_batches_opening_together_come_by_number(session: Session) -> None:
    batch(session, 9, T0 + timedelta(days=5))
    batch(session, 8, T0 + timedelta(days=5), days=3)

    found = upcoming_batch(session, T0)

    assert found is not None and found.number == 8


def test_the_upcoming_batch_changes_with_time(session: Session) -> None:
    batch(session, 4, T0 + timedelta(days=20))
    batch(session, 5, T0 + timedelta(days=40))

    later = upcoming_batch(session, T0 + timedelta(days=21))

    assert later is not None and later.number == 5
