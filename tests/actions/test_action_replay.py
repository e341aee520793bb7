"""A turn repeated after a crash replays what the first run recorded.

Each action with a side effect runs twice for the same message (the same
`idempotency_key` in the gateway's metadata, as when the gateway re-sends a
message whose turn it could not finish): the effect happens once (one code, one
mail, one applicant, one NIK job, one membership, one link, one ticket, one
erasure) and the person reads the same answer both times. With another key
(a new message) the action acts again, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine

from actions.handoff import ActionHandoff
from actions.privacy import ActionWithdrawConsent, ValidateErasureForm
from actions.registration import (
    CODE_OK,
    ActionJoinBatch,
    ActionSubmitRegistration,
    ValidateLinkForm,
    ValidateRegistrationForm,
)
from actions.services import Services, use_services
from bot import leases
from bot.channels.base import SMS, TELEGRAM
from bot.db import Base, make_engine, make_sessionmaker
from bot.handoff.desk import HandoffDesk
from bot.handoff.hours import AgentHours
from bot.handoff.models import Ticket
from bot.handoff.tickets import resolve
from bot.notify.models import QueuedMail
from bot.notify.queue import GRACE, LEASE, MailQueue
from bot.policy.programme import load_policy
from bot.privacy.desk import PrivacyDesk
from bot.privacy.vault import Vault
from bot.registration.desk import CodeRequest, RegistrationDesk
from bot.registry import batch_by_number
from bot.registry.models import (
    Applicant,
    BatchMembership,
    ChannelIdentity,
    EmailCode,
    VerificationJob,
)
from bot.schema import upgrade
from tests.actions.registration_fixtures import (
    BORN,
    CHAT,
    CODE_SECRET,
    EMAIL,
    KK,
    NAME,
    NIK,
    PHONE,
    START,
    FakeClock,
    FakeMailer,
    Registry,
    chat_tracker,
    form_tracker,
    slots_of,
    texts,
)

LINK_FORM = "link_form"
ERASURE_FORM = "erasure_form"


def turn(key: int) -> dict[str, Any]:
    """The metadata the gateway sends with inbox row `key`."""
    return {"channel": SMS, "simulated": False, "idempotency_key": str(key)}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated SQLite database for this module."""
    directory: Path = tmp_path_factory.mktemp("replay-actions")
    url = f"sqlite:///{directory}/registry.db"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def registry(engine: Engine, tmp_path: Path) -> Iterator[Registry]:
    """Empty tables; every desk installed over them with a recording mailer."""
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    sessions = make_sessionmaker(engine)
    clock = FakeClock(START)
    mailer = FakeMailer()
    desk = RegistrationDesk(sessions, CODE_SECRET, load_policy, clock=clock)
    use_services(
        Services(
            desk,
            mailer,
            HandoffDesk(sessions, AgentHours(), clock=clock),
            Vault(sessions, clock=clock),
            PrivacyDesk(sessions, CODE_SECRET, 365, tmp_path, clock=clock),
            MailQueue(sessions, mailer, clock=clock),
        )
    )
    yield Registry(sessions, desk, mailer, clock)
    use_services(None)


@pytest.fixture
def sms(registry: Registry) -> str:
    """An SMS conversation's pseudonym."""
    return registry.conversation(SMS, PHONE)


@pytest.fixture
def telegram(registry: Registry) -> str:
    """A Telegram conversation's pseudonym."""
    return registry.conversation(TELEGRAM, CHAT)


async def validate(
    form: Any,
    sender: str,
    slot: str,
    text: str,
    domain: DomainDict,
    key: int,
    answered: dict[str, object] | None = None,
    form_name: str = "registration_form",
) -> tuple[dict[str, object], list[str]]:
    """One validation of `text` answering `slot` in turn `key`."""
    dispatcher = CollectingDispatcher()
    tracker = form_tracker(
        sender, slot, text, answered=answered, form=form_name, metadata=turn(key)
    )
    events = await form.run(dispatcher, tracker, domain)
    return slots_of(events), texts(dispatcher)


def _code_issued(registry: Registry, sms: str, key: str | None = None) -> CodeRequest:
    """The caller of `sms` consented and got an e-mail code (its mail queued),
    by the turn with idempotency key `key`."""
    caller = registry.caller(sms)
    registry.desk.give_consent(caller)
    return registry.desk.request_email_code(caller, EMAIL, key)


def count(registry: Registry, model: type, *where: Any) -> int:
    """Rows of `model` matching `where`."""
    with registry.sessions() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int(session.execute(query).scalar_one())


# --- e-mail codes ------------------------------------------------------------------


async def test_a_repeated_email_turn_issues_and_mails_one_code(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    registry.desk.give_consent(registry.caller(sms))
    form = ValidateRegistrationForm()
    answered = {"reg_name": NAME}

    first = await validate(form, sms, "reg_email", EMAIL, domain, 11, answered)
    again = await validate(form, sms, "reg_email", EMAIL, domain, 11, answered)

    assert count(registry, EmailCode) == 1
    assert len(registry.mailer.sent) == 1
    assert first[1] == again[1]
    assert first[0]["requested_slot"] == again[0]["requested_slot"] == "reg_email_code"
    # The one code mailed still works: the repeat did not replace it.
    assert registry.desk.check_email_code(
        registry.caller(sms), registry.mailer.last.code
    ).ok

    await validate(form, sms, "reg_email", EMAIL, domain, 12, answered)
    assert count(registry, EmailCode) == 2 and len(registry.mailer.sent) == 2


async def test_a_repeated_code_turn_verifies_once_and_says_so_twice(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    request = _code_issued(registry, sms)
    assert request.code is not None
    form = ValidateRegistrationForm()
    answered = {"reg_name": NAME, "reg_email": EMAIL}

    first = await validate(
        form, sms, "reg_email_code", request.code, domain, 21, answered
    )
    again = await validate(
        form, sms, "reg_email_code", request.code, domain, 21, answered
    )

    assert first[1] == again[1] == ["Email kamu terverifikasi."]
    assert first[0]["reg_email_code"] == again[0]["reg_email_code"] == CODE_OK
    other = await validate(
        form, sms, "reg_email_code", request.code, domain, 22, answered
    )
    assert other[0]["reg_email_code"] is None  # a new message: the code is used


async def test_a_mail_is_not_lost_when_the_action_dies_after_the_commit(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    # The action server issued the code (committed) and died before mailing.
    request = _code_issued(registry, sms, "31")
    assert request.issued and registry.mailer.sent == []
    queue = MailQueue(registry.sessions, registry.mailer, clock=registry.clock)

    assert await queue.sweep() == 0  # within the grace the action may still send
    registry.clock.advance(seconds=GRACE.total_seconds() + 1)
    assert await queue.sweep() == 1  # the gateway's loop sends it

    assert [mail.code for mail in registry.mailer.sent] == [request.code]
    assert await queue.sweep() == 0
    # The repeated turn finds the code issued and its mail gone: nothing more.
    slots, said = await validate(
        ValidateRegistrationForm(),
        sms,
        "reg_email",
        EMAIL,
        domain,
        31,
        {"reg_name": NAME},
    )
    assert slots["requested_slot"] == "reg_email_code" and said == []
    assert len(registry.mailer.sent) == 1 and count(registry, EmailCode) == 1
    assert count(registry, QueuedMail) == 0  # the sent mail's body is gone


def _alive(registry: Registry, owner: str) -> None:
    """A heartbeat of `owner` written now (on the registry's clock)."""
    with registry.sessions() as session, session.begin():
        leases.beat(session, owner, registry.clock())


def _claimed_by(registry: Registry, owner: str, mail_id: int | None) -> MailQueue:
    """A process `owner`, alive now, that claimed the mail (and was then killed
    before sending it: nothing more is done in its name)."""
    _alive(registry, owner)
    queue = MailQueue(
        registry.sessions, registry.mailer, clock=registry.clock, owner=owner
    )
    assert mail_id is not None
    sent = len(registry.mailer.sent)
    claimed, _ = queue._claim_one(mail_id)
    assert claimed is not None and len(registry.mailer.sent) == sent
    return queue


async def test_a_mail_whose_sender_was_killed_goes_out_seconds_later(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    request = _code_issued(registry, sms, "32")
    _claimed_by(registry, "actions:killed", request.mail_id)
    gateway = MailQueue(
        registry.sessions, registry.mailer, clock=registry.clock, owner="gateway"
    )
    registry.clock.advance(seconds=GRACE.total_seconds() + 1)
    _alive(registry, "actions:killed")  # still beating: its claim holds
    assert await gateway.sweep() == 0

    registry.clock.advance(seconds=leases.HEARTBEAT_TIMEOUT + 1)  # its beats stopped

    assert await gateway.sweep() == 1  # long before the claim's LEASE
    assert [mail.code for mail in registry.mailer.sent] == [request.code]
    assert await gateway.sweep() == 0 and count(registry, QueuedMail) == 0


async def test_the_repeated_turn_takes_over_a_killed_senders_mail_at_once(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    caller = registry.caller(sms)
    registry.desk.give_consent(caller)
    await validate(ValidateRegistrationForm(), sms, "reg_email", EMAIL, domain, 33)
    assert len(registry.mailer.sent) == 1  # the first run's mail, sent
    registry.clock.advance(minutes=2)  # past the code limits' spacing
    request = registry.desk.request_email_code(caller, EMAIL, "34")
    _claimed_by(registry, "actions:killed", request.mail_id)
    registry.clock.advance(seconds=leases.HEARTBEAT_TIMEOUT + 1)

    # The turn is repeated on the restarted action server (another owner).
    await validate(ValidateRegistrationForm(), sms, "reg_email", EMAIL, domain, 34)

    assert [mail.code for mail in registry.mailer.sent][-1] == request.code
    assert len(registry.mailer.sent) == 2 and count(registry, QueuedMail) == 0


async def test_a_claim_without_an_owner_lasts_its_lease(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    request = _code_issued(registry, sms, "35")
    queue = MailQueue(registry.sessions, registry.mailer, clock=registry.clock)
    assert request.mail_id is not None
    assert queue._claim_one(request.mail_id)[0] is not None
    registry.clock.advance(seconds=LEASE.total_seconds() - 1)
    assert await queue.sweep() == 0  # whoever claimed it may still be sending
    registry.clock.advance(seconds=2)
    assert await queue.sweep() == 1


async def test_a_repeated_turn_sends_the_mail_its_first_run_did_not(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    request = _code_issued(registry, sms, "41")
    assert registry.mailer.sent == []

    await validate(ValidateRegistrationForm(), sms, "reg_email", EMAIL, domain, 41)

    assert [mail.code for mail in registry.mailer.sent] == [request.code]
    registry.clock.advance(minutes=1)
    assert await MailQueue(registry.sessions, registry.mailer).sweep() == 0


async def test_a_mail_that_failed_is_told_again_not_sent_again(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    registry.desk.give_consent(registry.caller(sms))
    registry.mailer.failing = True
    first = await validate(
        ValidateRegistrationForm(), sms, "reg_email", EMAIL, domain, 51
    )
    registry.mailer.failing = False
    again = await validate(
        ValidateRegistrationForm(), sms, "reg_email", EMAIL, domain, 51
    )

    assert first == again
    assert first[1][0].startswith("Maaf, email belum bisa dikirim")
    assert registry.mailer.sent == [] and count(registry, EmailCode) == 1


# --- submitting and correcting ----------------------------------------------------


def proven(registry: Registry, alias: str) -> None:
    """Consent given and the e-mail proven in this chat."""
    caller = registry.caller(alias)
    registry.desk.give_consent(caller)
    request = registry.desk.request_email_code(caller, EMAIL)
    assert request.code is not None
    assert registry.desk.check_email_code(caller, request.code).ok


ANSWERS = {
    "reg_consent": True,
    "reg_name": NAME,
    "reg_email": EMAIL,
    "reg_email_code": CODE_OK,
    "reg_nik": NIK,
    "reg_kk": KK,
    "reg_birth_date": BORN,
}


async def submit(
    alias: str, slots: dict[str, Any], key: int, domain: DomainDict
) -> tuple[list[str], dict[str, Any]]:
    """Run the submit action in turn `key`: (texts, slots set)."""
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(
        alias, "15-08-1990", "inform", slots=slots, metadata=turn(key)
    )
    events = await ActionSubmitRegistration().run(dispatcher, tracker, domain)
    return texts(dispatcher), slots_of(events)


async def test_a_repeated_submit_registers_once_and_gives_the_same_answer(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    proven(registry, sms)

    first = await submit(sms, ANSWERS, 61, domain)
    again = await submit(sms, ANSWERS, 61, domain)

    assert "sedang dicek" in first[0][0]
    assert again == first  # not "already registered", not the status
    assert count(registry, Applicant) == 1
    assert count(registry, VerificationJob) == 1
    other = await submit(sms, ANSWERS, 62, domain)
    assert other[0] != first[0]  # a new message: the registration's status


async def test_a_repeated_correction_queues_one_check(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    applicant_id = registry.register(sms)
    registry.nik_checked(applicant_id, "data_mismatch")
    corrected = {
        "reg_name": "SITI RAHAYU PUTRI",
        "reg_nik": "3174011508900002",
        "reg_kk": KK,
        "reg_birth_date": BORN,
    }

    jobs = count(registry, VerificationJob)
    first = await submit(sms, corrected, 71, domain)
    queued = count(registry, VerificationJob, VerificationJob.status == "queued")
    again = await submit(sms, corrected, 71, domain)

    assert first[0][0].startswith("Perbaikan data diterima.")
    assert again == first  # not the status of the check it queued
    assert count(registry, VerificationJob) == jobs
    assert count(registry, VerificationJob, VerificationJob.status == "queued") == (
        queued
    )


# --- joining a batch -------------------------------------------------------------


async def join(alias: str, key: int) -> list[str]:
    """Run the join action in turn `key`; what it said."""
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(alias, "gabung", "join_batch", metadata=turn(key))
    await ActionJoinBatch().run(dispatcher, tracker, {})
    return texts(dispatcher)


async def test_a_repeated_join_says_joined_both_times(
    registry: Registry, sms: str
) -> None:
    applicant_id = registry.register(sms)
    registry.nik_checked(applicant_id)
    registry.open_batch(5)

    first = await join(sms, 81)
    again = await join(sms, 81)

    assert first[0].startswith("Berhasil! Kamu ikut Gelombang 5.")
    assert again == first
    assert count(registry, BatchMembership) == 1
    with registry.sessions() as session:
        batch = batch_by_number(session, 5)
    assert batch is not None and batch.joined_count == 1
    assert (await join(sms, 82))[0].startswith("Kamu sudah ikut Gelombang 5.")


# --- linking a Telegram account --------------------------------------------------


async def test_a_repeated_link_turn_mails_one_code_and_links_once(
    registry: Registry, sms: str, telegram: str, domain: DomainDict
) -> None:
    registry.register(sms)
    mails = len(registry.mailer.sent)
    form = ValidateLinkForm()

    first = await validate(form, telegram, "link_nik", NIK, domain, 91, None, LINK_FORM)
    again = await validate(form, telegram, "link_nik", NIK, domain, 91, None, LINK_FORM)

    assert first == again and first[0]["link_nik"] == "sent"
    assert len(registry.mailer.sent) == mails + 1
    await validate(form, telegram, "link_nik", NIK, domain, 92, None, LINK_FORM)
    assert len(registry.mailer.sent) == mails + 2  # a new message: a new code
    code = registry.mailer.last.code
    answered = {"link_nik": "sent"}
    linked = await validate(
        form, telegram, "link_code", code, domain, 93, answered, LINK_FORM
    )
    repeated = await validate(
        form, telegram, "link_code", code, domain, 93, answered, LINK_FORM
    )
    assert linked == repeated and linked[0]["link_code"] == "linked"
    linked_identities = ChannelIdentity.applicant_id.is_not(None)
    assert count(registry, ChannelIdentity, linked_identities) == 2


# --- handing off -------------------------------------------------------------------


async def hand_off(alias: str, key: int, domain: DomainDict) -> list[str]:
    """Run the handoff action in turn `key`; what it said."""
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(
        alias, "mau ngomong sama orang", "request_human", metadata=turn(key)
    )
    await ActionHandoff().run(dispatcher, tracker, domain)
    return texts(dispatcher)


async def test_a_repeated_handoff_opens_one_ticket_even_when_it_was_resolved(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    first = await hand_off(sms, 101, domain)
    with registry.sessions() as session, session.begin():
        ticket_id = session.execute(select(Ticket.id)).scalar_one()
        resolve(session, ticket_id, None)  # an agent was quick
    registry.clock.advance(minutes=1)

    again = await hand_off(sms, 101, domain)

    assert again == first and first[0].startswith("Baik, saya sambungkan ke petugas.")
    assert count(registry, Ticket) == 1
    await hand_off(sms, 102, domain)
    assert count(registry, Ticket) == 2  # a new request: a new ticket


# --- the privacy desk ------------------------------------------------------------


async def test_a_repeated_erasure_mails_one_code_and_erases_once(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    registry.register(sms)
    mails = len(registry.mailer.sent)
    form = ValidateErasureForm()

    first = await validate(
        form, sms, "erasure_confirm", "ya", domain, 111, None, ERASURE_FORM
    )
    again = await validate(
        form, sms, "erasure_confirm", "ya", domain, 111, None, ERASURE_FORM
    )

    assert first == again and first[0]["erasure_confirm"] is True
    assert "***@" in first[1][0]  # the address, masked, both times
    assert len(registry.mailer.sent) == mails + 1
    code = registry.mailer.last.code
    answered = {"erasure_confirm": True}
    erased = await validate(
        form, sms, "erasure_code", code, domain, 112, answered, ERASURE_FORM
    )
    assert count(registry, Applicant) == 0
    repeated = await validate(
        form, sms, "erasure_code", code, domain, 112, answered, ERASURE_FORM
    )
    assert erased[0]["erasure_code"] == repeated[0]["erasure_code"] == "erased"
    assert erased[1] == repeated[1]


async def test_a_repeated_withdrawal_gives_the_same_answer(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    caller = registry.caller(sms)
    registry.desk.give_consent(caller)

    async def withdraw(key: int) -> list[str]:
        dispatcher = CollectingDispatcher()
        tracker = chat_tracker(
            sms, "tarik persetujuan", "withdraw_consent", metadata=turn(key)
        )
        await ActionWithdrawConsent().run(dispatcher, tracker, domain)
        return texts(dispatcher)

    first = await withdraw(121)
    again = await withdraw(121)

    assert again == first
    assert first != await withdraw(122)  # nothing left to withdraw now
