"""E-mail codes: stored as HMAC only; expiry, attempt limit, single use."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.registry import (
    CodeCheck,
    codes_sent_since,
    create_email_code,
    get_or_create_identity,
    verify_email_code,
)
from bot.registry.models import EmailCode
from tests.registry.conftest import concurrently, register

SECRET = b"test-email-code-secret-0123456789"
T0 = datetime(2020, 4, 11, 12, 0)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def _identity(session: Session) -> int:
    identity = get_or_create_identity(session, "telegram", "4242")
    session.commit()
    return identity.id


def test_the_right_code_proves_the_address_once(session: Session) -> None:
    owner = _identity(session)
    issued = create_email_code(
        session, SECRET, "Siti@Gmail.com", identity_id=owner, now=T0
    )
    session.commit()
    assert len(issued.code) == 6 and issued.code.isdigit()
    assert issued.expires_at == T0 + timedelta(minutes=15)
    assert issued.code not in repr(issued)
    stored = session.execute(select(EmailCode)).scalar_one()
    assert issued.code not in stored.code_hash and len(stored.code_hash) == 64
    assert stored.email == "siti@gmail.com"
    spaced = f"{issued.code[:3]} {issued.code[3:]}"
    check = verify_email_code(
        session, SECRET, spaced, identity_id=owner, now=T0 + timedelta(minutes=1)
    )
    assert check.ok and check.email == "siti@gmail.com" and check.attempts_left == 4
    again = verify_email_code(session, SECRET, issued.code, identity_id=owner, now=T0)
    assert again.outcome == "used"


def test_wrong_codes_count_and_the_limit_holds_even_for_the_right_code(
    session: Session,
) -> None:
    owner = _identity(session)
    issued = create_email_code(session, SECRET, "a@b.co", identity_id=owner, now=T0)
    outcomes = []
    for _ in range(5):
        check = verify_email_code(
            session, SECRET, _wrong(issued.code), identity_id=owner, now=T0
        )
        session.commit()
        outcomes.append((check.outcome, check.attempts_left))
    assert outcomes == [
        ("wrong", 4),
        ("wrong", 3),
        ("wrong", 2),
        ("wrong", 1),
        ("wrong", 0),
    ]
    final = verify_email_code(session, SECRET, issued.code, identity_id=owner, now=T0)
    assert final.outcome == "too_many_attempts"


def test_an_expired_code_and_a_missing_code(session: Session) -> None:
    owner = _identity(session)
    assert verify_email_code(session, SECRET, "123456", identity_id=owner).outcome == (
        "no_code"
    )
    issued = create_email_code(
        session, SECRET, "a@b.co", identity_id=owner, ttl=timedelta(minutes=5), now=T0
    )
    late = T0 + timedelta(minutes=5)
    check = verify_email_code(session, SECRET, issued.code, identity_id=owner, now=late)
    assert check.outcome == "expired" and not check.ok


def test_only_the_newest_code_counts_and_a_different_secret_fails(
    session: Session,
) -> None:
    owner = _identity(session)
    old = create_email_code(session, SECRET, "a@b.co", identity_id=owner, now=T0)
    new = create_email_code(session, SECRET, "a@b.co", identity_id=owner, now=T0)
    assert codes_sent_since(session, T0, identity_id=owner) == 2
    assert codes_sent_since(session, T0 + timedelta(1), identity_id=owner) == 0
    if old.code != new.code:
        stale = verify_email_code(session, SECRET, old.code, identity_id=owner, now=T0)
        assert stale.outcome == "wrong"
    other_secret = b"another-secret-of-enough-length!!"
    assert not verify_email_code(
        session, other_secret, new.code, identity_id=owner, now=T0
    ).ok
    assert verify_email_code(session, SECRET, new.code, identity_id=owner, now=T0).ok


def test_codes_for_an_applicant_and_bad_arguments(session: Session) -> None:
    applicant = register(session, 1)
    issued = create_email_code(
        session, SECRET, "a@b.co", applicant_id=applicant.id, now=T0
    )
    assert verify_email_code(
        session, SECRET, issued.code, applicant_id=applicant.id, now=T0
    ).ok
    with pytest.raises(ValueError):
        create_email_code(session, SECRET, "a@b.co", now=T0)  # no owner
    with pytest.raises(ValueError):
        create_email_code(session, b"short", "a@b.co", applicant_id=applicant.id)
    with pytest.raises(ValueError):
        create_email_code(session, SECRET, "not an email", applicant_id=applicant.id)


def test_parallel_guesses_cannot_exceed_the_attempt_limit(
    sessions: sessionmaker,
) -> None:
    with sessions() as session:
        owner = _identity(session)
        issued = create_email_code(session, SECRET, "a@b.co", identity_id=owner)
        session.commit()

    def guess(_: int) -> CodeCheck:
        with sessions() as session:
            check = verify_email_code(
                session, SECRET, _wrong(issued.code), identity_id=owner
            )
            session.commit()
            return check

    results = concurrently(10, guess)
    assert all(isinstance(r, CodeCheck) for r in results), results
    outcomes = sorted(r.outcome for r in results)
    assert outcomes.count("wrong") == 5
    assert outcomes.count("too_many_attempts") == 5
    with sessions() as session:
        assert session.execute(select(EmailCode.attempts)).scalar_one() == 5
