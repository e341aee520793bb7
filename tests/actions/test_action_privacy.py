"""The privacy actions offline: what is held (owner only, masked), erasure over
the chat with the e-mailed code, consent withdrawal, the consent question."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from actions.privacy import (
    ActionAskRegConsent,
    ActionErasureDone,
    ActionTellMyData,
    ActionWithdrawConsent,
    ValidateErasureForm,
)
from actions.services import Services, use_services
from bot.channels.base import SMS, TELEGRAM
from bot.channels.sms.gsm7 import is_gsm7, segment_info
from bot.db import Base, make_engine, make_sessionmaker
from bot.handoff.desk import HandoffDesk
from bot.handoff.hours import AgentHours
from bot.notify.queue import MailQueue
from bot.policy.programme import load_policy
from bot.policy.validation import mask_email
from bot.privacy import texts as privacy_texts
from bot.privacy.desk import HeldData, PrivacyDesk, mask_name
from bot.privacy.vault import Vault
from bot.registration.desk import RegistrationDesk
from bot.registry.models import Applicant, ChannelIdentity, ConsentRecord
from bot.schema import upgrade
from tests.actions.registration_fixtures import (
    CODE_SECRET,
    EMAIL,
    KK,
    NIK,
    PHONE,
    START,
    STRANGER_PHONE,
    FakeClock,
    FakeMailer,
    Registry,
    chat_tracker,
    form_tracker,
    open_form_with,
    slots_of,
    texts,
)

FORM = "erasure_form"
DAYS = 365


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated SQLite database for this module."""
    directory: Path = tmp_path_factory.mktemp("privacy-actions")
    url = f"sqlite:///{directory}/registry.db"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def registry(engine: Engine, tmp_path: Path) -> Iterator[Registry]:
    """Empty tables; registration, handoff and privacy desks installed as the
    actions' services with a recording mailer."""
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    sessions = make_sessionmaker(engine)
    clock = FakeClock(START)
    mailer = FakeMailer()
    desk = RegistrationDesk(sessions, CODE_SECRET, load_policy, clock=clock)
    handoff = HandoffDesk(sessions, AgentHours(), clock=clock)
    privacy = PrivacyDesk(sessions, CODE_SECRET, DAYS, tmp_path, clock=clock)
    mail = MailQueue(sessions, mailer, clock=clock)
    use_services(Services(desk, mailer, handoff, Vault(sessions), privacy, mail))
    yield Registry(sessions, desk, mailer, clock)
    use_services(None)


@pytest.fixture
def sms(registry: Registry) -> str:
    """The pseudonym of an SMS conversation from :data:`PHONE`."""
    return registry.conversation(SMS, PHONE)


async def _tell(sender: str, domain: DomainDict) -> str:
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(sender, "data saya apa saja", "ask_my_data")
    await ActionTellMyData().run(dispatcher, tracker, domain)
    return " ".join(texts(dispatcher))


async def _erasure_step(
    sender: str,
    slot: str,
    text: str,
    domain: DomainDict,
    answered: dict[str, object] | None = None,
) -> tuple[dict[str, object], list[str]]:
    dispatcher = CollectingDispatcher()
    tracker = form_tracker(sender, slot, text, answered=answered, form=FORM)
    events = await ValidateErasureForm().run(dispatcher, tracker, domain)
    return slots_of(events), texts(dispatcher)


async def test_the_owner_hears_what_is_held_masked_why_and_how_long(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    registry.register(sms)
    told = await _tell(sms, domain)
    for clear in (NIK, KK, EMAIL, PHONE, "SITI RAHAYU", "15-08-1990", "1990-08-15"):
        assert clear not in told
    assert "3174********0001" in told
    assert f"{DAYS} hari" in told
    assert "pendaftaran dan seleksi" in told


async def test_another_number_hears_nothing_about_the_registration(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    registry.register(sms)
    stranger = registry.conversation(SMS, STRANGER_PHONE)
    told = await _tell(stranger, domain)
    assert told == privacy_texts.nothing_registered_text(DAYS)


async def test_erasure_over_the_chat_with_the_emailed_code(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    registry.register(sms)
    slots, said = await _erasure_step(sms, "erasure_confirm", "ya", domain)
    assert slots["erasure_confirm"] is True
    mail = registry.mailer.sent[-1]
    assert mail.to == EMAIL
    assert "menghapus" in mail.body
    assert EMAIL not in " ".join(said)  # the address is told masked

    answered = {"erasure_confirm": True}
    wrong = "000000" if mail.code != "000000" else "111111"
    slots, said = await _erasure_step(sms, "erasure_code", wrong, domain, answered)
    assert slots["erasure_code"] is None
    assert said == [privacy_texts.wrong_code_text(4)]
    assert registry.count(Applicant) == 1

    slots, _ = await _erasure_step(sms, "erasure_code", mail.code, domain, answered)
    assert slots["erasure_code"] == "erased"
    assert registry.count(Applicant) == 0

    dispatcher = CollectingDispatcher()
    tracker = form_tracker(sms, "erasure_code", mail.code, answered=answered, form=FORM)
    tracker.slots["erasure_code"] = "erased"
    await ActionErasureDone().run(dispatcher, tracker, domain)
    assert texts(dispatcher) == [privacy_texts.ERASED]


async def test_asking_again_after_a_session_expired_mid_way_asks_the_yes_again(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    """Rasa carries a session's slots over: the yes given an hour ago (its code
    dead by now) is not an answer to validate again, nor a reason to ask at
    once for that code."""
    registry.register(sms)

    events, dispatcher = await open_form_with(
        ValidateErasureForm(),
        sms,
        domain,
        slots={"erasure_confirm": True},
        asked_before="erasure_code",
        form=FORM,
        text="hapus data saya",
        intent="request_erasure",
    )

    # Rasa's form then asks for the first empty slot: the yes.
    assert slots_of(events) == {"erasure_confirm": None}
    assert dispatcher.messages == [], "no unclear-answer notice for a yes kept"
    assert registry.mailer.sent == [], "no code until the yes is given again"


async def test_no_keeps_the_data(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    registry.register(sms)
    slots, _ = await _erasure_step(sms, "erasure_confirm", "gak jadi", domain)
    assert slots["erasure_confirm"] is False
    assert registry.mailer.sent == []
    assert registry.count(Applicant) == 1


async def test_withdrawal_stops_processing_and_offers_erasure(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    applicant_id = registry.register(sms)
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(sms, "saya tarik persetujuan", "withdraw_consent")
    await ActionWithdrawConsent().run(dispatcher, tracker, domain)
    assert texts(dispatcher) == [privacy_texts.WITHDRAWN]
    assert "HAPUS DATA" in privacy_texts.WITHDRAWN
    assert not registry.desk.has_consent(registry.caller(sms))
    standing = registry.desk.standing_of(applicant_id)
    assert standing.applicant.status == "revoked"


async def test_the_consent_question_says_the_retention_period(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(sms, "daftar", "start_registration")
    await ActionAskRegConsent().run(dispatcher, tracker, domain)
    [text] = texts(dispatcher)
    assert f"{DAYS} hari" in text
    assert is_gsm7(text)
    assert segment_info(text).segments <= 2


async def test_the_consent_question_has_buttons_except_on_sms(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    telegram = registry.conversation(TELEGRAM, "424242")
    buttons = {}
    for sender in (sms, telegram):
        dispatcher = CollectingDispatcher()
        await ActionAskRegConsent().run(
            dispatcher, chat_tracker(sender, "daftar", "start_registration"), domain
        )
        buttons[sender] = dispatcher.messages[0]["buttons"]
    assert buttons[sms] == []  # one SMS segment: the person types SETUJU
    assert [b["title"] for b in buttons[telegram]] == ["Setuju", "Tidak"]


@pytest.mark.parametrize("days", [30, 365, 3650])
def test_the_consent_keeps_its_meaning_in_one_sms(days: int) -> None:
    text = privacy_texts.consent_text(days)
    assert is_gsm7(text) and segment_info(text).segments == 1
    for what in ("nama", "email", "NIK", "KK", "tgl lahir", "no HP"):
        assert what in text  # what is kept
    assert "hanya untuk daftar Prakerja" in text  # why
    assert f"dihapus {days} hari" in text  # for how long
    assert "HAPUS DATA" in text  # how to withdraw
    assert text.endswith("Setuju?")  # the question, on the only page


@pytest.mark.parametrize(
    "text",
    [
        privacy_texts.consent_text(3650),
        privacy_texts.nothing_registered_text(3650),
        privacy_texts.ERASURE_QUESTION,
        privacy_texts.ERASED,
        privacy_texts.WITHDRAWN,
        privacy_texts.WITHDRAWN_NOTHING,
        privacy_texts.NO_CALLER,
        privacy_texts.NO_EMAIL,
    ],
)
def test_texts_are_gsm7_and_short(text: str) -> None:
    assert is_gsm7(text)
    assert segment_info(text).segments <= 2


def test_what_is_held_fits_two_sms_for_a_long_name_and_address() -> None:
    held = HeldData(
        (
            ("name", mask_name("MUHAMMAD RIZKY ADI PRATAMA")),
            ("nik", "3174********0001"),
            ("kk", "3174********0001"),
            ("birth", "**-**-1990"),
            ("email", mask_email("muhammad.rizky@students.ugm.ac.id")),
            ("phone", "+62812****002"),
        ),
        ("sms", "telegram"),
        3650,
    )
    text = privacy_texts.held_text(held)
    assert is_gsm7(text)
    assert segment_info(text).segments <= 2


async def test_someone_not_registered_erases_their_chat_with_a_yes(
    registry: Registry, domain: DomainDict
) -> None:
    stranger = registry.conversation(SMS, STRANGER_PHONE)
    registry.desk.give_consent(registry.caller(stranger))
    slots, said = await _erasure_step(stranger, "erasure_confirm", "iya", domain)
    assert slots["erasure_confirm"] is True
    assert said == [] and registry.mailer.sent == []
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(stranger, "iya", "affirm", slots={"erasure_confirm": True})
    await ActionErasureDone().run(dispatcher, tracker, domain)
    assert texts(dispatcher) == [privacy_texts.ERASED_UNREGISTERED]
    assert registry.count(ChannelIdentity) == 0
    assert registry.count(ConsentRecord) == 0
