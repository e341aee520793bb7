"""The privacy desk: what is held (masked, owner only), erasure with the
e-mail code, consent withdrawal; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from bot.channels.sms.gsm7 import segment_info
from bot.privacy.desk import PrivacyDesk, mask_birth_date, mask_name
from bot.privacy.texts import held_text
from bot.registration.desk import RegistrationDesk
from bot.registration.status import next_action, status_text
from bot.registry.models import (
    APPLICANT_PARTICIPANT,
    APPLICANT_REVOKED,
    Applicant,
    VerificationJob,
)
from tests.privacy.conftest import PERSONAL, Person, leftovers
from tests.registration.conftest import (
    BORN,
    OTHER_PHONE,
    PHONE,
    SECRET,
    FakeClock,
    caller_of,
    register,
)


@pytest.fixture
def privacy(sessions: sessionmaker, clock: FakeClock, mail_dir: Path) -> PrivacyDesk:
    """A privacy desk over the test database, keeping data 365 days."""
    return PrivacyDesk(sessions, SECRET, 365, mail_dir, clock=clock)


def test_the_owner_is_told_what_is_held_masked(
    desk: RegistrationDesk, privacy: PrivacyDesk, person: Person
) -> None:
    held = privacy.held(caller_of(desk, person.pseudonym))
    assert held is not None
    told = held_text(held)
    assert [value for value in PERSONAL if value in told] == []
    assert "NIK 3174********0001" in told
    assert ("nik", "3174********0001") in held.fields
    assert held.channels == ("sms",)
    assert held.retention_days == 365


def test_a_stranger_is_told_nothing_and_cannot_erase(
    desk: RegistrationDesk,
    privacy: PrivacyDesk,
    converse: object,
    person: Person,
) -> None:
    from bot.messages.pseudonym import pseudonym
    from tests.registration.conftest import PSEUDONYM_KEY

    assert callable(converse)
    converse("sms", OTHER_PHONE)
    stranger = caller_of(desk, pseudonym(PSEUDONYM_KEY, "sms", OTHER_PHONE))
    assert privacy.held(stranger) is None
    assert privacy.request_erasure_code(stranger).code is None
    assert privacy.confirm_erasure(stranger, "123456").outcome == "not_registered"


def test_erasure_needs_the_code_sent_to_the_registered_email(
    desk: RegistrationDesk,
    privacy: PrivacyDesk,
    engine: Engine,
    mail_dir: Path,
    person: Person,
) -> None:
    caller = caller_of(desk, person.pseudonym)
    request = privacy.request_erasure_code(caller)
    assert request.code is not None
    assert request.email == PERSONAL[2]
    wrong = "000000" if request.code != "000000" else "111111"
    refused = privacy.confirm_erasure(caller, wrong)
    assert refused.outcome == "wrong"
    assert PERSONAL[0] in " ".join(leftovers(engine))
    assert privacy.confirm_erasure(caller, request.code).outcome == "erased"
    assert leftovers(engine) == ["conversation: " + PHONE]  # until the purge
    assert len(list(mail_dir.iterdir())) == 1  # another person's mail stays


def test_withdrawing_consent_stops_the_registration(
    desk: RegistrationDesk, privacy: PrivacyDesk, sessions: sessionmaker, person: Person
) -> None:
    caller = caller_of(desk, person.pseudonym)
    assert desk.has_consent(caller)
    assert privacy.withdraw(caller)
    assert not desk.has_consent(caller)
    with sessions() as session:
        assert session.execute(select(Applicant.status)).scalar_one() == (
            APPLICANT_REVOKED
        )
        job = session.execute(select(VerificationJob)).scalar_one()
        assert (job.status, job.result_code) == ("failed", "consent_withdrawn")


def test_an_erased_participant_cannot_register_the_nik_again(
    desk: RegistrationDesk,
    privacy: PrivacyDesk,
    sessions: sessionmaker,
    converse: object,
    person: Person,
) -> None:
    from bot.messages.pseudonym import pseudonym
    from tests.registration.conftest import PSEUDONYM_KEY

    with sessions() as session, session.begin():
        session.execute(
            Applicant.__table__.update().values(status=APPLICANT_PARTICIPANT)
        )
    caller = caller_of(desk, person.pseudonym)
    request = privacy.request_erasure_code(caller)
    assert request.code is not None
    assert privacy.confirm_erasure(caller, request.code).outcome == "erased"
    assert callable(converse)
    converse("sms", OTHER_PHONE)
    again = caller_of(desk, pseudonym(PSEUDONYM_KEY, "sms", OTHER_PHONE))
    assert register(desk, again).outcome == "nik_taken"


def test_an_erased_person_who_never_took_part_may_register_again(
    desk: RegistrationDesk, privacy: PrivacyDesk, person: Person
) -> None:
    caller = caller_of(desk, person.pseudonym)
    request = privacy.request_erasure_code(caller)
    assert request.code is not None
    assert privacy.confirm_erasure(caller, request.code).outcome == "erased"
    fresh = caller_of(desk, person.pseudonym)
    assert register(desk, fresh).outcome == "queued"


def test_masks() -> None:
    assert mask_birth_date(BORN) == "**-**-1990"
    assert mask_name("BUDI  SANTOSO") == "B*** S***"


def test_after_withdrawal_the_status_says_the_registration_stopped(
    desk: RegistrationDesk, privacy: PrivacyDesk, person: Person
) -> None:
    caller = caller_of(desk, person.pseudonym)
    assert privacy.withdraw(caller)
    standing = desk.standing(caller_of(desk, person.pseudonym))
    assert standing is not None
    said = next_action(standing)
    assert "ditarik" in said and "HAPUS DATA" in said
    assert segment_info(status_text(standing)).segments <= 2
