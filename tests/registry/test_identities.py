"""Channel identities, linking to applicants (ownership), and consent records."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.registry import (
    ApplicantHasIdentity,
    ApplicantNotFound,
    IdentityInfo,
    IdentityLinked,
    IdentityNotFound,
    active_consent,
    attach_consents,
    find_identity,
    get_or_create_identity,
    grant_consent,
    identities_of,
    link_identity,
    owner_of,
    unlink_identity,
    withdraw_consent,
)
from bot.registry.models import ChannelIdentity, ConsentRecord
from tests.registry.conftest import concurrently, register

T0 = datetime(2020, 4, 11, 12, 0)
PHONE = "+6281234567890"


def test_get_or_create_is_idempotent_and_race_safe(sessions: sessionmaker) -> None:
    def attempt(_: int) -> int:
        with sessions() as session:
            identity = get_or_create_identity(session, "telegram", "123456789")
            session.commit()
            return identity.id

    results = concurrently(10, attempt)
    assert all(isinstance(r, int) for r in results), results
    assert len(set(results)) == 1
    with sessions() as session:
        count = session.execute(
            select(func.count()).select_from(ChannelIdentity)
        ).scalar()
        assert count == 1
        found = find_identity(session, "telegram", " 123456789 ")
        assert found is not None and found.applicant_id is None
        assert "123456789" not in repr(found)
        assert find_identity(session, "sms", "123456789") is None
    with sessions() as session, pytest.raises(ValueError):
        get_or_create_identity(session, "whatsapp", "123")


def test_link_is_idempotent_and_exclusive(session: Session) -> None:
    owner, other = register(session, 1), register(session, 2)
    telegram = get_or_create_identity(session, "telegram", "111")
    second_telegram = get_or_create_identity(session, "telegram", "222")
    linked = link_identity(session, telegram.id, owner.id, "registration", now=T0)
    assert (linked.applicant_id, linked.linked_at, linked.link_method) == (
        owner.id,
        T0,
        "registration",
    )
    assert link_identity(session, telegram.id, owner.id, "email_code") == linked
    with pytest.raises(IdentityLinked):
        link_identity(session, telegram.id, other.id, "registration")
    with pytest.raises(ApplicantHasIdentity):
        link_identity(session, second_telegram.id, owner.id, "email_code")
    with pytest.raises(ApplicantNotFound):
        link_identity(session, second_telegram.id, owner.id + 100, "email_code")
    with pytest.raises(IdentityNotFound):
        link_identity(session, telegram.id + 100, other.id, "email_code")
    with pytest.raises(ValueError):
        link_identity(session, second_telegram.id, other.id, "guess")
    sms = get_or_create_identity(session, "sms", PHONE)
    link_identity(session, sms.id, owner.id, "phone")
    session.commit()
    assert [i.channel for i in identities_of(session, owner.id)] == ["sms", "telegram"]
    unlinked = unlink_identity(session, telegram.id)
    assert unlinked.applicant_id is None and unlinked.link_method is None
    moved = link_identity(session, second_telegram.id, owner.id, "email_code")
    assert moved.applicant_id == owner.id


def test_two_identities_linking_one_applicant_at_once_one_wins(
    sessions: sessionmaker,
) -> None:
    with sessions() as session:
        applicant_id = register(session, 1).id
        ids = [
            get_or_create_identity(session, "telegram", f"u{i}").id for i in range(6)
        ]
        session.commit()

    def attempt(index: int) -> IdentityInfo:
        with sessions() as session:
            linked = link_identity(session, ids[index], applicant_id, "email_code")
            session.commit()
            return linked

    results = concurrently(6, attempt)
    assert sum(isinstance(r, IdentityInfo) for r in results) == 1, results
    assert sum(isinstance(r, ApplicantHasIdentity) for r in results) == 5, results


def test_status_owner_is_the_linked_identity_and_over_sms_the_registered_phone(
    session: Session,
) -> None:
    applicant = register(session, 1, phone=PHONE)
    stranger = register(session, 2, phone="+6281111111111")
    telegram = get_or_create_identity(session, "telegram", "777")
    assert owner_of(session, "telegram", "777") is None  # not linked yet
    assert owner_of(session, "telegram", "888") is None  # unknown
    link_identity(session, telegram.id, applicant.id, "registration")
    owner = owner_of(session, "telegram", "777")
    assert owner is not None and owner.id == applicant.id
    sms = get_or_create_identity(session, "sms", PHONE)
    link_identity(session, sms.id, applicant.id, "phone")
    assert owner_of(session, "sms", PHONE) == owner
    borrowed = get_or_create_identity(session, "sms", "+6289999999999")
    link_identity(session, borrowed.id, stranger.id, "sms_code")
    assert owner_of(session, "sms", "+6289999999999") is None  # not the phone on file


def test_consent_grant_withdraw_and_attach(session: Session) -> None:
    identity = get_or_create_identity(session, "telegram", "555")
    assert active_consent(session, "registration", identity_id=identity.id) is None
    given = grant_consent(
        session, "registration", "v1", identity_id=identity.id, now=T0
    )
    assert given.granted_at == T0 and given.withdrawn_at is None
    assert (
        grant_consent(session, "registration", "v1", identity_id=identity.id) == given
    )
    newer = grant_consent(session, "registration", "v2", identity_id=identity.id)
    assert newer.id != given.id
    current = active_consent(session, "registration", identity_id=identity.id)
    assert current == newer
    applicant = register(session, 1)
    assert attach_consents(session, identity.id, applicant.id) == 2
    current = active_consent(session, "registration", applicant_id=applicant.id)
    assert current is not None and current.text_version == "v2"
    assert withdraw_consent(session, "registration", applicant_id=applicant.id) == 2
    assert active_consent(session, "registration", identity_id=identity.id) is None
    with pytest.raises(ValueError):
        grant_consent(session, "registration", "v1")
    session.commit()
    rows = session.execute(select(func.count()).select_from(ConsentRecord)).scalar()
    assert rows == 2  # declining is never stored; only the two consents given
