"""The registration desk on SQLite and PostgreSQL: callers, consent, e-mail codes,
submitting and correcting, standing, joining a batch and linking Telegram."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from bot.channels.base import SMS, TELEGRAM
from bot.registration.desk import CodeRequest, RegistrationDesk
from bot.registration.status import next_action, status_text
from bot.registry import (
    applicant_steps,
    batch_by_number,
    find_applicant,
    get_applicant,
    get_identity,
    jobs_of,
    record_selection,
)
from bot.registry.models import (
    JOB_NIK,
    JOB_QUEUED,
    LINK_EMAIL_CODE,
    LINK_REGISTRATION,
    RESULT_NOT_SELECTED,
    STEP_BATCH,
    STEP_DONE,
    STEP_EMAIL,
    STEP_NIK,
    STEP_PENDING,
    STEP_SELECTION,
    Applicant,
    Batch,
    ChannelIdentity,
    ConsentRecord,
    EmailCode,
)
from bot.selection.lifecycle import close_batch, publish_results
from bot.selection.selection import select_batch
from tests.registration.conftest import (
    CHAT,
    EMAIL,
    KK,
    OTHER_CHAT,
    OTHER_PHONE,
    PHONE,
    START,
    FakeClock,
    PolicyChoice,
    add_batch,
    caller_of,
    details,
    finish_nik_check,
    nik,
    prove_email,
    register,
)

Converse = Callable[[str, str], str]


def count(sessions: sessionmaker, model: type) -> int:
    """Rows in the table of `model`."""
    with sessions() as session:
        return int(
            session.execute(select(func.count()).select_from(model)).scalar_one()
        )


def registered_sms(
    desk: RegistrationDesk, converse: Converse, phone: str = PHONE, serial: int = 1
) -> int:
    """Register over SMS from `phone`; the applicant id."""
    caller = caller_of(desk, converse(SMS, phone))
    submission = register(desk, caller, serial)
    assert submission.outcome == "queued"
    assert submission.applicant_id is not None
    return submission.applicant_id


def registered_sms_alias(desk: RegistrationDesk, alias: str, serial: int = 1) -> int:
    """Register the conversation `alias`; the applicant id."""
    submission = register(desk, caller_of(desk, alias), serial)
    assert submission.outcome == "queued" and submission.applicant_id is not None
    return submission.applicant_id


def verified_sms(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
    phone: str = PHONE,
    serial: int = 1,
) -> str:
    """Register over SMS and pass the NIK check; the conversation's pseudonym."""
    alias = converse(SMS, phone)
    submission = register(desk, caller_of(desk, alias), serial)
    assert submission.applicant_id is not None
    finish_nik_check(sessions, submission.applicant_id, clock())
    return alias


# --- who is talking ----------------------------------------------------------------


def test_an_unknown_pseudonym_has_no_caller(desk: RegistrationDesk) -> None:
    assert desk.caller("no-such-conversation") is None


def test_callers_come_from_conversations(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    sms = caller_of(desk, converse(SMS, PHONE))
    telegram = caller_of(desk, converse(TELEGRAM, CHAT))

    assert (sms.channel, sms.address, sms.applicant_id) == (SMS, PHONE, None)
    assert (telegram.channel, telegram.address) == (TELEGRAM, CHAT)
    assert sms.identity_id != telegram.identity_id
    again = caller_of(desk, converse(SMS, OTHER_PHONE))
    assert again.identity_id not in (sms.identity_id, telegram.identity_id)
    assert count(sessions, ChannelIdentity) == 3


def test_a_caller_is_the_same_identity_every_time(
    desk: RegistrationDesk, converse: Converse
) -> None:
    alias = converse(SMS, PHONE)

    assert caller_of(desk, alias).identity_id == caller_of(desk, alias).identity_id


def test_a_caller_never_shows_the_address_in_repr(
    desk: RegistrationDesk, converse: Converse
) -> None:
    assert PHONE not in repr(caller_of(desk, converse(SMS, PHONE)))


# --- consent -----------------------------------------------------------------------


def test_consent_is_recorded_once(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    caller = caller_of(desk, converse(SMS, PHONE))
    assert not desk.has_consent(caller)

    desk.give_consent(caller)
    desk.give_consent(caller)

    assert desk.has_consent(caller)
    assert count(sessions, ConsentRecord) == 1


def test_consent_of_one_caller_is_not_anothers(
    desk: RegistrationDesk, converse: Converse
) -> None:
    desk.give_consent(caller_of(desk, converse(SMS, PHONE)))

    assert not desk.has_consent(caller_of(desk, converse(SMS, OTHER_PHONE)))


# --- e-mail codes ------------------------------------------------------------------


def test_the_right_code_proves_the_address(
    desk: RegistrationDesk, converse: Converse
) -> None:
    caller = caller_of(desk, converse(TELEGRAM, CHAT))
    request = desk.request_email_code(caller, EMAIL)
    assert request.code is not None and len(request.code) == 6
    assert (request.email, request.wait_minutes) == (EMAIL, 0)
    assert not desk.email_proven(caller, EMAIL)

    wrong = "000000" if request.code != "000000" else "111111"
    check = desk.check_email_code(caller, wrong)
    assert (check.outcome, check.attempts_left) == ("wrong", 4)
    assert not desk.email_proven(caller, EMAIL)

    assert desk.check_email_code(caller, request.code).ok
    assert desk.email_proven(caller, EMAIL)
    assert desk.email_proven(caller, EMAIL.upper())
    assert not desk.email_proven(caller, "lain@gmail.com")


def test_a_code_proves_the_address_only_for_its_caller(
    desk: RegistrationDesk, converse: Converse
) -> None:
    caller = caller_of(desk, converse(SMS, PHONE))
    other = caller_of(desk, converse(SMS, OTHER_PHONE))
    request = desk.request_email_code(caller, EMAIL)
    assert request.code is not None

    assert desk.check_email_code(other, request.code).outcome == "no_code"
    assert not desk.email_proven(other, EMAIL)


def test_a_used_code_cannot_be_used_again(
    desk: RegistrationDesk, converse: Converse
) -> None:
    caller = caller_of(desk, converse(SMS, PHONE))
    request = desk.request_email_code(caller, EMAIL)
    assert request.code is not None
    assert desk.check_email_code(caller, request.code).ok

    assert desk.check_email_code(caller, request.code).outcome == "used"


def test_a_fourth_code_within_15_minutes_is_refused(
    desk: RegistrationDesk, converse: Converse, clock: FakeClock
) -> None:
    caller = caller_of(desk, converse(SMS, PHONE))
    for _ in range(3):
        assert desk.request_email_code(caller, EMAIL).code is not None
        clock.advance(minutes=4)

    refused = desk.request_email_code(caller, EMAIL)

    assert refused == CodeRequest(wait_minutes=15, usable=True)  # the last is live
    assert refused.code is None and refused.email is None
    clock.advance(minutes=4)  # the first code is now 16 minutes old
    assert desk.request_email_code(caller, EMAIL).code is not None


def test_at_most_eight_codes_a_day(
    desk: RegistrationDesk, converse: Converse, clock: FakeClock
) -> None:
    caller = caller_of(desk, converse(SMS, PHONE))
    for _ in range(8):
        assert desk.request_email_code(caller, EMAIL).code is not None
        clock.advance(minutes=16)

    refused = desk.request_email_code(caller, EMAIL)

    assert refused.code is None
    assert refused.wait_minutes == 24 * 60


def test_limits_count_per_caller(desk: RegistrationDesk, converse: Converse) -> None:
    caller = caller_of(desk, converse(SMS, PHONE))
    for _ in range(3):
        desk.request_email_code(caller, EMAIL)

    other = caller_of(desk, converse(SMS, OTHER_PHONE))
    assert desk.request_email_code(other, EMAIL).code is not None


# --- submitting --------------------------------------------------------------------


def test_submitting_over_sms_registers_and_queues_the_nik_check(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    alias = converse(SMS, PHONE)
    caller = caller_of(desk, alias)

    submission = register(desk, caller)

    assert submission.outcome == "queued"
    applicant_id = submission.applicant_id
    assert applicant_id is not None
    with sessions() as session:
        applicant = get_applicant(session, applicant_id)
        identity = get_identity(session, caller.identity_id)
        steps = applicant_steps(session, applicant_id)
        jobs = jobs_of(session, applicant_id)
        consents = session.execute(select(ConsentRecord)).scalars().all()
    assert (applicant.phone, applicant.email, applicant.nik) == (PHONE, EMAIL, nik(1))
    assert applicant.kk_number == KK
    assert applicant.email_verified_at is not None
    assert (identity.applicant_id, identity.link_method) == (
        applicant_id,
        LINK_REGISTRATION,
    )
    assert steps[STEP_EMAIL].status == STEP_DONE
    assert steps[STEP_NIK].status == STEP_PENDING
    assert [(job.kind, job.status) for job in jobs] == [(JOB_NIK, JOB_QUEUED)]
    assert [(c.identity_id, c.applicant_id) for c in consents] == [
        (caller.identity_id, applicant_id)
    ]
    assert caller_of(desk, alias).applicant_id == applicant_id


def test_submitting_over_telegram_stores_no_phone(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    submission = register(desk, caller_of(desk, converse(TELEGRAM, CHAT)))

    assert submission.outcome == "queued" and submission.applicant_id is not None
    with sessions() as session:
        assert get_applicant(session, submission.applicant_id).phone is None


def test_a_simulated_sms_user_registers_without_a_phone(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    alias = converse(SMS, "sim:andi")

    submission = register(desk, caller_of(desk, alias))

    assert submission.outcome == "queued" and submission.applicant_id is not None
    with sessions() as session:
        assert get_applicant(session, submission.applicant_id).phone is None
    assert desk.standing(caller_of(desk, alias)) is not None


def test_submitting_without_consent_stores_nothing(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    caller = caller_of(desk, converse(SMS, PHONE))
    prove_email(desk, caller)

    submission = desk.submit(caller, details())

    assert submission.outcome == "no_consent"
    assert submission.applicant_id is None
    assert count(sessions, Applicant) == 0
    assert caller_of(desk, converse(SMS, OTHER_PHONE)).applicant_id is None


def test_submitting_with_an_unproven_email_stores_nothing(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    caller = caller_of(desk, converse(SMS, PHONE))
    desk.give_consent(caller)
    request = desk.request_email_code(caller, EMAIL)  # sent, never typed back
    assert request.code is not None

    assert desk.submit(caller, details()).outcome == "email_unproven"
    assert desk.submit(caller, details(email=None)).outcome == "email_unproven"
    prove_email(desk, caller, "lain@gmail.com")
    assert desk.submit(caller, details()).outcome == "email_unproven"
    assert count(sessions, Applicant) == 0


def test_a_nik_registered_by_someone_else_is_refused(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    registered_sms(desk, converse)
    stranger_alias = converse(SMS, OTHER_PHONE)
    stranger = caller_of(desk, stranger_alias)

    submission = register(desk, stranger, 1, email="lain@gmail.com")

    assert submission.outcome == "nik_taken"
    assert caller_of(desk, stranger_alias).applicant_id is None
    assert count(sessions, Applicant) == 1


def test_a_full_family_card_is_refused(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    policy: PolicyChoice,
) -> None:
    policy.version = "2021"  # at most 2 applicants per KK
    registered_sms(desk, converse, PHONE, 1)
    registered_sms(desk, converse, OTHER_PHONE, 2)
    third = caller_of(desk, converse(TELEGRAM, CHAT))

    submission = register(desk, third, 3)

    assert submission.outcome == "kk_full"
    assert count(sessions, Applicant) == 2
    assert caller_of(desk, converse(TELEGRAM, OTHER_CHAT)).applicant_id is None


def test_without_a_kk_cap_the_family_card_takes_more(
    desk: RegistrationDesk, converse: Converse
) -> None:
    registered_sms(desk, converse, PHONE, 1)
    registered_sms(desk, converse, OTHER_PHONE, 2)

    third = caller_of(desk, converse(TELEGRAM, CHAT))
    assert register(desk, third, 3).outcome == "queued"


def test_someone_too_young_is_not_registered(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    caller = caller_of(desk, converse(SMS, PHONE))
    young = START.date().replace(year=START.year - 15)

    submission = register(desk, caller, 1, birth_date=young)

    assert submission.outcome == "not_eligible"
    assert submission.reasons and all(submission.reasons)
    assert count(sessions, Applicant) == 0


def test_a_wrong_nik_can_be_corrected_and_is_checked_again(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    alias = converse(SMS, PHONE)
    applicant_id = registered_sms_alias(desk, alias)
    finish_nik_check(sessions, applicant_id, clock(), reason="data_mismatch")
    clock.advance(minutes=5)

    submission = desk.submit(
        caller_of(desk, alias), details(7, full_name="SITI RAHAYU PUTRI")
    )

    assert (submission.outcome, submission.applicant_id) == ("corrected", applicant_id)
    with sessions() as session:
        applicant = get_applicant(session, applicant_id)
        steps = applicant_steps(session, applicant_id)
        jobs = jobs_of(session, applicant_id, JOB_NIK)
    assert (applicant.nik, applicant.full_name) == (nik(7), "SITI RAHAYU PUTRI")
    assert steps[STEP_NIK].status == STEP_PENDING
    assert [job.status for job in jobs] == ["done", JOB_QUEUED]
    assert count(sessions, Applicant) == 1


def test_a_final_failure_cannot_be_corrected(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    alias = converse(SMS, PHONE)
    applicant_id = registered_sms_alias(desk, alias)
    finish_nik_check(sessions, applicant_id, clock(), reason="student")

    submission = desk.submit(caller_of(desk, alias), details(7))

    assert submission.outcome == "registered_already"
    with sessions() as session:
        assert get_applicant(session, applicant_id).nik == nik(1)
        assert len(jobs_of(session, applicant_id)) == 1
    standing = desk.standing(caller_of(desk, alias))
    assert standing is not None and not standing.correctable


def test_a_pending_check_cannot_be_corrected(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    alias = converse(SMS, PHONE)
    applicant_id = registered_sms_alias(desk, alias)

    assert desk.submit(caller_of(desk, alias), details(7)).outcome == (
        "registered_already"
    )
    with sessions() as session:
        assert get_applicant(session, applicant_id).nik == nik(1)


def test_a_correction_to_someone_elses_nik_is_refused(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    registered_sms(desk, converse, OTHER_PHONE, 2)
    alias = converse(SMS, PHONE)
    applicant_id = registered_sms_alias(desk, alias)
    finish_nik_check(sessions, applicant_id, clock(), reason="unknown_nik")

    submission = desk.submit(caller_of(desk, alias), details(2))

    assert submission.outcome == "nik_taken"
    with sessions() as session:
        assert get_applicant(session, applicant_id).nik == nik(1)
        assert applicant_steps(session, applicant_id)[STEP_NIK].failure_reason == (
            "unknown_nik"
        )


# --- standing ----------------------------------------------------------------------


def test_an_unlinked_caller_has_no_standing(
    desk: RegistrationDesk, converse: Converse
) -> None:
    assert desk.standing(caller_of(desk, converse(TELEGRAM, CHAT))) is None


def test_the_registering_caller_has_a_standing(
    desk: RegistrationDesk, converse: Converse
) -> None:
    alias = converse(SMS, PHONE)
    applicant_id = registered_sms_alias(desk, alias)

    standing = desk.standing(caller_of(desk, alias))

    assert standing is not None
    assert standing.applicant.id == applicant_id
    assert standing.step_status(STEP_NIK) == STEP_PENDING
    assert standing.nik_job is not None and standing.nik_job.status == JOB_QUEUED
    assert standing.memberships == [] and standing.current_membership is None


def test_a_stranger_knowing_the_nik_gets_no_standing(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    registered_sms(desk, converse)
    stranger_alias = converse(SMS, OTHER_PHONE)
    stranger = caller_of(desk, stranger_alias)
    desk.give_consent(stranger)
    prove_email(desk, stranger, EMAIL)

    assert desk.submit(stranger, details(1)).outcome == "nik_taken"
    assert desk.standing(caller_of(desk, stranger_alias)) is None
    assert desk.request_link_code(stranger, nik(1)).code is not None  # mailed to owner
    assert desk.standing(caller_of(desk, stranger_alias)) is None
    assert desk.join(caller_of(desk, stranger_alias)).outcome == "not_registered"


# --- joining a batch ---------------------------------------------------------------


def open_batch(sessions: sessionmaker, number: int = 5, quota: int = 100) -> None:
    """A batch open from a day ago for ten days."""
    add_batch(
        sessions,
        number,
        START - timedelta(days=1),
        START + timedelta(days=10),
        quota,
    )


def upcoming_batch(sessions: sessionmaker, number: int = 6) -> None:
    """A batch opening in twenty days."""
    add_batch(sessions, number, START + timedelta(days=20), START + timedelta(days=30))


def closed_batch(sessions: sessionmaker, number: int = 4) -> None:
    """A batch that closed two days ago."""
    add_batch(sessions, number, START - timedelta(days=12), START - timedelta(days=2))


def joined_count(sessions: sessionmaker, number: int) -> int:
    """How many joined batch `number`."""
    with sessions() as session:
        found = batch_by_number(session, number)
    assert found is not None
    return found.joined_count


def test_joining_waits_for_the_nik_check(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    open_batch(sessions)
    alias = converse(SMS, PHONE)
    registered_sms_alias(desk, alias)

    assert desk.join(caller_of(desk, alias)).outcome == "not_ready"
    assert joined_count(sessions, 5) == 0


def test_a_verified_applicant_joins_the_open_batch(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    open_batch(sessions)
    alias = verified_sms(desk, converse, sessions, clock)
    caller = caller_of(desk, alias)

    result = desk.join(caller)

    assert result.outcome == "joined"
    assert result.batch is not None and result.batch.number == 5
    assert result.batch.joined_count == 1
    assert caller.applicant_id is not None
    with sessions() as session:
        steps = applicant_steps(session, caller.applicant_id)
    assert steps[STEP_BATCH].status == STEP_DONE
    assert steps[STEP_SELECTION].status == STEP_PENDING
    standing = desk.standing(caller)
    assert standing is not None and standing.current_membership is not None
    assert standing.current_membership.batch_number == 5


def test_joining_again_changes_nothing(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    open_batch(sessions)
    caller = caller_of(desk, verified_sms(desk, converse, sessions, clock))
    assert desk.join(caller).outcome == "joined"
    clock.advance(minutes=1)

    again = desk.join(caller)
    by_number = desk.join(caller, 5)

    assert again.outcome == by_number.outcome == "already_joined"
    assert again.batch is not None and again.batch.number == 5
    assert joined_count(sessions, 5) == 1


def test_waiting_in_one_batch_another_cannot_be_joined(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    open_batch(sessions, 5)
    open_batch(sessions, 7)
    caller = caller_of(desk, verified_sms(desk, converse, sessions, clock))
    assert desk.join(caller, 5).outcome == "joined"

    result = desk.join(caller, 7)

    assert result.outcome == "waiting"
    assert result.batch is not None and result.batch.number == 5
    assert joined_count(sessions, 7) == 0


def test_a_full_batch_offers_another_open_one(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    open_batch(sessions, 5, quota=1)
    open_batch(sessions, 7)
    with sessions() as session, session.begin():
        session.execute(
            update(Batch.__table__).where(Batch.number == 5).values(joined_count=1)
        )
    caller = caller_of(desk, verified_sms(desk, converse, sessions, clock))

    result = desk.join(caller, 5)

    assert result.outcome == "full"
    assert result.batch is not None and result.batch.number == 5
    assert result.alternative is not None and result.alternative.number == 7
    assert result.alternative_open


def test_a_closed_batch_offers_the_next_one(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    closed_batch(sessions, 4)
    upcoming_batch(sessions, 6)
    caller = caller_of(desk, verified_sms(desk, converse, sessions, clock))

    result = desk.join(caller, 4)

    assert result.outcome == "closed"
    assert result.batch is not None and result.batch.number == 4
    assert result.alternative is not None and result.alternative.number == 6
    assert not result.alternative_open
    assert joined_count(sessions, 4) == 0


def test_a_batch_not_yet_open_cannot_be_joined(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    upcoming_batch(sessions, 6)
    caller = caller_of(desk, verified_sms(desk, converse, sessions, clock))

    result = desk.join(caller, 6)

    assert result.outcome == "not_open"
    assert result.alternative is None


def test_an_unknown_batch_number_is_refused(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    open_batch(sessions, 5)
    caller = caller_of(desk, verified_sms(desk, converse, sessions, clock))

    result = desk.join(caller, 99)

    assert result.outcome == "no_batch"
    assert result.alternative is not None and result.alternative.number == 5


def test_with_no_open_batch_the_next_one_is_named(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    closed_batch(sessions, 4)
    upcoming_batch(sessions, 6)
    caller = caller_of(desk, verified_sms(desk, converse, sessions, clock))

    result = desk.join(caller)

    assert result.outcome == "none_open"
    assert result.alternative is not None and result.alternative.number == 6


def test_with_several_open_batches_the_caller_chooses(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    open_batch(sessions, 7)
    open_batch(sessions, 5)
    caller = caller_of(desk, verified_sms(desk, converse, sessions, clock))

    result = desk.join(caller)

    assert result.outcome == "choose"
    assert [choice.number for choice in result.choices] == [5, 7]
    assert joined_count(sessions, 5) == joined_count(sessions, 7) == 0
    assert desk.join(caller, 7).outcome == "joined"


def test_a_batch_not_selected_in_is_not_joined_again(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    open_batch(sessions, 5)
    caller = caller_of(desk, verified_sms(desk, converse, sessions, clock))
    joined = desk.join(caller)
    assert joined.batch is not None and caller.applicant_id is not None
    clock.advance(days=11)  # batch 5 closed; the selection said no
    with sessions() as session, session.begin():
        record_selection(
            session, caller.applicant_id, joined.batch.id, RESULT_NOT_SELECTED
        )
    upcoming_batch(sessions, 6)

    result = desk.join(caller, 5)

    assert result.outcome == "closed"
    assert result.alternative is not None and result.alternative.number == 6
    with sessions() as session:
        steps = applicant_steps(session, caller.applicant_id)
    assert steps[STEP_SELECTION].status == STEP_PENDING  # untouched by the refusal
    assert joined_count(sessions, 5) == 1


def test_an_unregistered_caller_cannot_join(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    open_batch(sessions)

    result = desk.join(caller_of(desk, converse(TELEGRAM, CHAT)))

    assert result.outcome == "not_registered"
    assert joined_count(sessions, 5) == 0


@pytest.mark.parametrize(
    ("version", "batch", "refused"),
    [
        ("2023", 5, True),  # maximum age 64
        ("2021", 18, True),  # maximum age 64 from wave 18
        ("2021", 17, False),  # no maximum age before wave 18
    ],
)
def test_someone_too_old_now_cannot_join(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
    policy: PolicyChoice,
    version: str,
    batch: int,
    refused: bool,
) -> None:
    open_batch(sessions, batch)
    old = START.date().replace(year=START.year - 65)
    alias = converse(SMS, PHONE)
    submission = register(desk, caller_of(desk, alias), 1, birth_date=old)
    assert submission.applicant_id is not None  # "2020" has no maximum age
    finish_nik_check(sessions, submission.applicant_id, clock())
    policy.version = version

    result = desk.join(caller_of(desk, alias))

    if refused:
        assert result.outcome == "not_eligible" and "64" in result.reasons[0]
        assert joined_count(sessions, batch) == 0
    else:
        assert result.outcome == "joined"
        assert joined_count(sessions, batch) == 1


# --- linking a Telegram account ----------------------------------------------------


def test_a_link_code_goes_to_the_registered_email(
    desk: RegistrationDesk, converse: Converse
) -> None:
    registered_sms(desk, converse)
    telegram = caller_of(desk, converse(TELEGRAM, CHAT))

    request = desk.request_link_code(telegram, nik(1))

    assert request.code is not None and len(request.code) == 6
    assert request.email == EMAIL


def test_an_unknown_nik_gets_an_empty_request(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    registered_sms(desk, converse)
    telegram = caller_of(desk, converse(TELEGRAM, CHAT))
    codes_before = count(sessions, EmailCode)

    assert desk.request_link_code(telegram, nik(9)) == CodeRequest()
    assert desk.request_link_code(telegram, "bukan nik") == CodeRequest()
    assert count(sessions, EmailCode) == codes_before


def test_the_right_link_code_links_the_telegram_account(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    applicant_id = registered_sms(desk, converse)
    alias = converse(TELEGRAM, CHAT)
    telegram = caller_of(desk, alias)
    request = desk.request_link_code(telegram, nik(1))
    assert request.code is not None

    assert desk.confirm_link_code(telegram, request.code).ok

    linked = caller_of(desk, alias)
    assert linked.applicant_id == applicant_id
    with sessions() as session:
        assert get_identity(session, linked.identity_id).link_method == LINK_EMAIL_CODE
    standing = desk.standing(linked)
    assert standing is not None and standing.applicant.id == applicant_id


def test_a_wrong_link_code_links_nothing(
    desk: RegistrationDesk, converse: Converse
) -> None:
    registered_sms(desk, converse)
    alias = converse(TELEGRAM, CHAT)
    telegram = caller_of(desk, alias)
    request = desk.request_link_code(telegram, nik(1))
    assert request.code is not None
    wrong = "000000" if request.code != "000000" else "111111"

    check = desk.confirm_link_code(telegram, wrong)

    assert (check.outcome, check.attempts_left) == ("wrong", 4)
    assert caller_of(desk, alias).applicant_id is None
    assert desk.standing(caller_of(desk, alias)) is None


def test_a_link_code_without_a_request_links_nothing(
    desk: RegistrationDesk, converse: Converse
) -> None:
    registered_sms(desk, converse)
    alias = converse(TELEGRAM, CHAT)
    telegram = caller_of(desk, alias)
    prove_email(desk, telegram, EMAIL)  # a registration code is no link code

    assert desk.confirm_link_code(telegram, "123456").outcome == "no_code"
    assert caller_of(desk, alias).applicant_id is None


def test_a_link_code_is_no_registration_code(
    desk: RegistrationDesk, converse: Converse
) -> None:
    registered_sms(desk, converse)
    telegram = caller_of(desk, converse(TELEGRAM, CHAT))
    request = desk.request_link_code(telegram, nik(1))
    assert request.code is not None

    assert desk.check_email_code(telegram, request.code).outcome == "no_code"
    assert desk.confirm_link_code(telegram, request.code).ok


def test_a_new_telegram_account_replaces_the_old_one(
    desk: RegistrationDesk, converse: Converse
) -> None:
    first_alias = converse(TELEGRAM, CHAT)
    submission = register(desk, caller_of(desk, first_alias))
    assert submission.applicant_id is not None
    second_alias = converse(TELEGRAM, OTHER_CHAT)
    second = caller_of(desk, second_alias)
    request = desk.request_link_code(second, nik(1))
    assert request.code is not None

    assert desk.confirm_link_code(second, request.code).ok

    assert caller_of(desk, second_alias).applicant_id == submission.applicant_id
    assert caller_of(desk, first_alias).applicant_id is None


def test_link_codes_are_limited_to_three_an_hour(
    desk: RegistrationDesk, converse: Converse, clock: FakeClock
) -> None:
    registered_sms(desk, converse)
    telegram = caller_of(desk, converse(TELEGRAM, CHAT))
    for _ in range(3):
        assert desk.request_link_code(telegram, nik(1)).code is not None
        clock.advance(minutes=10)

    assert desk.request_link_code(telegram, nik(1)) == CodeRequest()
    clock.advance(minutes=31)  # the first code is now over an hour old
    assert desk.request_link_code(telegram, nik(1)).code is not None


def test_the_nik_lookup_ignores_separators(
    desk: RegistrationDesk, converse: Converse, sessions: sessionmaker
) -> None:
    registered_sms(desk, converse)
    telegram = caller_of(desk, converse(TELEGRAM, CHAT))
    spaced = f"{nik(1)[:6]} {nik(1)[6:12]} {nik(1)[12:]}"

    assert desk.request_link_code(telegram, spaced).code is not None
    with sessions() as session:
        assert find_applicant(session, spaced) is not None


def test_a_published_result_then_the_revoked_card_after_the_deadline(
    desk: RegistrationDesk,
    converse: Converse,
    sessions: sessionmaker,
    clock: FakeClock,
) -> None:
    open_batch(sessions, 5)
    upcoming_batch(sessions, 6)
    caller = caller_of(desk, verified_sms(desk, converse, sessions, clock))
    joined = desk.join(caller)
    assert joined.batch is not None and caller.applicant_id is not None
    batch_id = joined.batch.id
    clock.advance(days=1)
    with sessions.begin() as session:
        close_batch(session, batch_id, clock())
    select_batch(sessions.begin, batch_id, clock())
    drawn = desk.standing(caller)
    assert drawn is not None and "Seleksi: menunggu pengumuman" in status_text(drawn)
    assert desk.join(caller, 6).outcome == "waiting"  # not known before publishing
    with sessions.begin() as session:
        publish_results(session, batch_id, clock())
    told = desk.standing(caller)
    assert told is not None and "Seleksi: lolos" in status_text(told)
    assert "sebelum" in next_action(told)
    assert desk.join(caller, 6).outcome == "selected"
    clock.advance(days=30)  # policy 2020: 30 days to buy the first training
    late = desk.standing(caller)
    assert late is not None and "dicabut" in next_action(late)
    assert desk.join(caller, 6).outcome == "revoked"
