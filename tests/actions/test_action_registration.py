"""Registration actions over a real desk (SQLite) and a recording mailer.

Each test's conversation is a gateway `conversation` row; the tracker's sender id
is its pseudonym, as in production. The desk's clock is frozen; e-mail codes are
read from the recorded mails.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

import bot.registry.models  # noqa: F401  (registers the registry tables)
from actions.registration import (
    CODE_OK,
    REG_SLOTS,
    ActionAskRegBirthConfirm,
    ActionAskRegEmailCode,
    ActionJoinBatch,
    ActionLinkDone,
    ActionRegistrationHelp,
    ActionRegistrationStatus,
    ActionSubmitRegistration,
    ValidateLinkForm,
    ValidateRegistrationForm,
)
from actions.services import Services, services, use_services
from bot.channels.base import SMS, TELEGRAM
from bot.db import Base, make_engine, make_sessionmaker
from bot.handoff.desk import HandoffDesk
from bot.handoff.hours import AgentHours
from bot.handoff.models import Ticket
from bot.notify.queue import MailQueue
from bot.policy.catalogue import say
from bot.policy.programme import load_policy
from bot.privacy.vault import TOKEN_PATTERN, Vault, conversation_of
from bot.registration.desk import RegistrationDesk
from bot.registry import (
    applicant_steps,
    batch_by_number,
    claim_jobs,
    complete_job,
    enqueue_job,
    get_applicant,
    get_identity,
    set_step,
)
from bot.registry.models import (
    LINK_EMAIL_CODE,
    STEP_FAILED,
    STEP_NIK,
    STEP_PENDING,
    Applicant,
    ChannelIdentity,
    ConsentRecord,
    VerificationJob,
)
from bot.schema import upgrade
from bot.verification.nik import REASONS
from tests.actions.conftest import EventDict
from tests.actions.registration_fixtures import (
    BORN,
    CHAT,
    CODE_SECRET,
    EMAIL,
    FORM,
    KK,
    LINK_FORM,
    NAME,
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

ALL_ANSWERS = {
    "reg_consent": True,
    "reg_name": NAME,
    "reg_email": EMAIL,
    "reg_email_code": CODE_OK,
    "reg_nik": NIK,
    "reg_kk": KK,
    "reg_birth_date": BORN,
}


def kept(pseudonym: str, token: object) -> str:
    """A slot the validator kept as a token: the token, revealed (asserting
    that the slot holds a token, never the value)."""
    assert isinstance(token, str) and TOKEN_PATTERN.fullmatch(token), token
    return services().vault.reveal(pseudonym, token)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated SQLite database for this module (gateway and registry tables)."""
    directory: Path = tmp_path_factory.mktemp("registration-actions")
    url = f"sqlite:///{directory}/registry.db"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def registry(engine: Engine) -> Iterator[Registry]:
    """Empty tables, a desk with a frozen clock, installed as the actions'
    services with a recording mailer; forgotten afterwards."""
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    sessions = make_sessionmaker(engine)
    clock = FakeClock(START)
    mailer = FakeMailer()
    desk = RegistrationDesk(sessions, CODE_SECRET, load_policy, clock=clock)
    handoff = HandoffDesk(sessions, AgentHours(), clock=clock)
    vault = Vault(sessions, clock=clock)
    mail = MailQueue(sessions, mailer, clock=clock)
    use_services(Services(desk, mailer, handoff, vault, mail=mail))
    yield Registry(sessions, desk, mailer, clock)
    use_services(None)


@pytest.fixture
def sms(registry: Registry) -> str:
    """The pseudonym of an SMS conversation from :data:`PHONE`."""
    return registry.conversation(SMS, PHONE)


@pytest.fixture
def telegram(registry: Registry) -> str:
    """The pseudonym of a Telegram conversation."""
    return registry.conversation(TELEGRAM, CHAT)


async def validate(
    tracker_sender: str,
    slot: str,
    text: str,
    domain: DomainDict,
    answered: dict[str, object] | None = None,
    form: str = FORM,
    earlier: Iterable[EventDict] = (),
) -> tuple[dict[str, object], list[str]]:
    """Run the form's validation for `text` answering `slot`: (slots set, texts)."""
    dispatcher = CollectingDispatcher()
    tracker = form_tracker(
        tracker_sender, slot, text, answered=answered, form=form, earlier=earlier
    )
    action = ValidateLinkForm() if form == LINK_FORM else ValidateRegistrationForm()
    events = await action.run(dispatcher, tracker, domain)
    return slots_of(events), texts(dispatcher)


# --- consent -----------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["setuju", "Ya, saya setuju", "mau", "boleh"])
async def test_consent_is_recorded(
    registry: Registry, sms: str, domain: DomainDict, answer: str
) -> None:
    slots, _ = await validate(sms, "reg_consent", answer, domain)

    assert slots["reg_consent"] is True
    assert slots["requested_slot"] == "reg_name"
    assert registry.desk.has_consent(registry.caller(sms))


@pytest.mark.parametrize(
    "answer", ["tidak", "tidak setuju", "gak mau", "belum bersedia"]
)
async def test_declining_ends_the_form_with_nothing_stored(
    registry: Registry, sms: str, domain: DomainDict, answer: str
) -> None:
    slots, _ = await validate(sms, "reg_consent", answer, domain)

    assert slots["reg_consent"] is False
    assert slots["requested_slot"] is None
    assert registry.count(ConsentRecord) == 0

    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(sms, answer, "deny", slots={"reg_consent": False})
    events = await ActionSubmitRegistration().run(dispatcher, tracker, {})

    assert "tidak ada data yang disimpan" in texts(dispatcher)[0]
    assert slots_of(events) == dict.fromkeys(REG_SLOTS)
    assert registry.count(ConsentRecord) == 0
    assert registry.count(Applicant) == 0


async def test_one_validation_looks_up_the_caller_and_the_consent_once(
    registry: Registry,
    sms: str,
    domain: DomainDict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """rasa_sdk asks for the required slots three times in one call."""
    calls: dict[str, int] = {"caller": 0, "has_consent": 0}
    for name in calls:
        original = getattr(registry.desk, name)

        def counted(*args: Any, _name: str = name, _f: Any = original) -> Any:
            calls[_name] += 1
            return _f(*args)

        monkeypatch.setattr(registry.desk, name, counted)
    slots, _ = await validate(sms, "reg_name", "Siti Rahayu", domain)

    assert slots["requested_slot"] == "reg_consent"  # not given: asked first
    assert calls == {"caller": 1, "has_consent": 1}


async def test_an_unclear_consent_is_asked_again(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    slots, said = await validate(sms, "reg_consent", "hmm apa itu", domain)

    assert slots["reg_consent"] is None and slots["reg_unclear"] == 1
    assert said == ['Jawab "setuju" atau "tidak" ya.']
    assert registry.count(ConsentRecord) == 0


async def test_with_consent_given_the_form_starts_at_the_name(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    registry.desk.give_consent(registry.caller(sms))
    dispatcher = CollectingDispatcher()
    tracker = form_tracker(sms, "reg_name", "Siti Rahayu")

    required = await ValidateRegistrationForm().required_slots(
        [], dispatcher, tracker, domain
    )

    assert required[0] == "reg_name" and "reg_consent" not in required


# --- name --------------------------------------------------------------------------


async def test_a_name_with_digits_is_refused(sms: str, domain: DomainDict) -> None:
    slots, said = await validate(sms, "reg_name", "Siti 123", domain)

    assert slots["reg_name"] is None
    assert said == ["Nama tidak boleh berisi angka. Tulis nama lengkap sesuai KTP."]


@pytest.mark.parametrize("answer", ["halo", "S", "Siti_Rahayu", "@siti"])
async def test_what_is_no_name_is_refused(
    sms: str, domain: DomainDict, answer: str
) -> None:
    slots, said = await validate(sms, "reg_name", answer, domain)

    assert slots["reg_name"] is None
    assert said == [
        "Tulis nama lengkapmu sesuai KTP, hanya huruf, contoh: Siti Rahayu."
    ]


async def test_a_name_is_kept_in_capitals(sms: str, domain: DomainDict) -> None:
    slots, said = await validate(sms, "reg_name", "  siti   rahayu ", domain)

    assert slots["reg_name"] == "SITI RAHAYU"
    assert said == []


async def test_a_second_unclear_answer_offers_a_person(
    sms: str, domain: DomainDict
) -> None:
    slots, said = await validate(
        sms, "reg_name", "123", domain, answered={"reg_unclear": 1}
    )

    assert slots["reg_unclear"] == 2
    assert said[0].startswith("Nama tidak boleh berisi angka.")
    assert len(said[0]) > len(
        "Nama tidak boleh berisi angka. Tulis nama lengkap sesuai KTP."
    )


# --- e-mail and its code -----------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("siti.gmail.com", "Alamat email harus berisi tepat satu tanda @."),
        ("siti rahayu@gmail.com", "Karakter ini tidak bisa dipakai: spasi"),
        ("siti@gmial.com", "Maksud kamu siti@gmail.com? Ketik ulang alamat email"),
        ("siti@yahoo.co", "Maksud kamu siti@yahoo.com atau siti@yahoo.co.id?"),
    ],
)
async def test_a_bad_email_gets_a_precise_message_and_no_mail(
    registry: Registry, sms: str, domain: DomainDict, answer: str, message: str
) -> None:
    slots, said = await validate(sms, "reg_email", answer, domain)

    assert slots["reg_email"] is None
    assert message in said[0]
    assert registry.mailer.sent == []


async def test_a_valid_email_gets_a_code_mail(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    registry.desk.give_consent(registry.caller(sms))

    slots, said = await validate(
        sms, "reg_email", "Siti.Rahayu@Gmail.com", domain, {"reg_name": NAME}
    )

    assert kept(sms, slots["reg_email"]) == EMAIL
    assert slots["reg_email_code"] is None
    assert slots["requested_slot"] == "reg_email_code"
    mail = registry.mailer.last
    assert mail.to == EMAIL and len(mail.code) == 6
    assert said == []


@pytest.mark.parametrize(
    ("answer", "tokenized"),
    [
        ("alamat email saya Siti.Rahayu@gmail.com", False),
        ("Email: siti.rahayu@gmail.com ya kak", False),
        (f"alamat email saya {EMAIL}", True),  # as the gateway hands it to Rasa
    ],
)
async def test_an_email_inside_a_sentence_gets_a_code_mail(
    registry: Registry, sms: str, domain: DomainDict, answer: str, tokenized: bool
) -> None:
    registry.desk.give_consent(registry.caller(sms))
    if tokenized:
        answer = gateway_tokens(registry, sms, answer)
        assert EMAIL not in answer

    slots, said = await validate(sms, "reg_email", answer, domain)

    assert said == [] and kept(sms, slots["reg_email"]) == EMAIL
    assert registry.mailer.last.to == EMAIL


async def test_a_space_inside_the_address_is_refused_after_known_words(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    """ "siti rahayu@..." must not become "rahayu@...": a stranger's mailbox."""
    registry.desk.give_consent(registry.caller(sms))

    slots, said = await validate(
        sms, "reg_email", "email saya siti rahayu@gmail.com", domain
    )

    assert slots["reg_email"] is None
    assert "Karakter ini tidak bisa dipakai: spasi" in said[0]
    assert registry.mailer.sent == []


async def test_the_code_question_says_where_the_code_went(
    sms: str, domain: DomainDict
) -> None:
    dispatcher = CollectingDispatcher()
    tracker = form_tracker(sms, "reg_email_code", "", answered={"reg_email": EMAIL})

    await ActionAskRegEmailCode().run(dispatcher, tracker, domain)

    assert "si***@gmail.com" in texts(dispatcher)[0]
    assert EMAIL not in texts(dispatcher)[0]


async def sent_code(registry: Registry, alias: str, domain: DomainDict) -> str:
    """Answer the e-mail question; the code mailed."""
    slots, _ = await validate(alias, "reg_email", EMAIL, domain)
    assert kept(alias, slots["reg_email"]) == EMAIL
    return registry.mailer.last.code


async def type_code(
    alias: str, text: str, domain: DomainDict
) -> tuple[dict[str, Any], list[str]]:
    """Answer the code question (the e-mail answered before)."""
    return await validate(
        alias, "reg_email_code", text, domain, answered={"reg_email": EMAIL}
    )


async def test_the_right_code_verifies_the_email(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    code = await sent_code(registry, sms, domain)

    slots, said = await validate(
        sms, "reg_email_code", code, domain, answered={"reg_email": EMAIL}
    )

    assert slots["reg_email_code"] == CODE_OK
    assert said == ["Email kamu terverifikasi."]
    assert registry.desk.email_proven(registry.caller(sms), EMAIL)


async def test_a_code_typed_inside_a_sentence_is_read(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    code = await sent_code(registry, sms, domain)

    slots, _ = await validate(
        sms,
        "reg_email_code",
        f"kodenya {code[:3]} {code[3:]} ya",
        domain,
        answered={"reg_email": EMAIL},
    )

    assert slots["reg_email_code"] == CODE_OK


async def test_a_wrong_code_says_how_many_tries_are_left(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    code = await sent_code(registry, sms, domain)

    slots, said = await type_code(sms, wrong_code(code), domain)

    assert slots["reg_email_code"] is None
    assert said[0].startswith("Kodenya salah. Sisa 4 kali coba.")
    assert not registry.desk.email_proven(registry.caller(sms), EMAIL)


async def test_no_digits_at_the_code_step_asks_for_the_code(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    await sent_code(registry, sms, domain)

    slots, said = await validate(
        sms, "reg_email_code", "belum masuk", domain, answered={"reg_email": EMAIL}
    )

    assert slots["reg_email_code"] is None
    assert said == ["Ketik 6 angka kode dari email, atau ULANG untuk kode baru."]
    assert len(registry.mailer.sent) == 1


async def test_ulang_sends_a_new_code_and_only_it_counts(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    first = await sent_code(registry, sms, domain)

    slots, _ = await validate(
        sms, "reg_email_code", "ULANG", domain, answered={"reg_email": EMAIL}
    )

    assert len(registry.mailer.sent) == 2
    assert kept(sms, slots["reg_email"]) == EMAIL and slots["reg_email_code"] is None
    second = registry.mailer.last.code
    if first != second:
        old, _ = await validate(
            sms, "reg_email_code", first, domain, answered={"reg_email": EMAIL}
        )
        assert old["reg_email_code"] is None
    new, _ = await validate(
        sms, "reg_email_code", second, domain, answered={"reg_email": EMAIL}
    )
    assert new["reg_email_code"] == CODE_OK


async def test_an_expired_code_is_told_and_a_new_one_mailed(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    """Typed hours later (the person came back): no "type ULANG" round trip."""
    old = await sent_code(registry, sms, domain)
    registry.clock.advance(hours=2)

    slots, said = await type_code(sms, old, domain)

    assert said == ["Kode itu sudah tidak berlaku."]
    assert len(registry.mailer.sent) == 2
    assert kept(sms, slots["reg_email"]) == EMAIL and slots["reg_email_code"] is None
    new, _ = await type_code(sms, registry.mailer.last.code, domain)
    assert new["reg_email_code"] == CODE_OK


async def test_a_code_tried_too_often_is_not_mailed_again_while_valid(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    code = await sent_code(registry, sms, domain)
    for _ in range(5):
        await type_code(sms, wrong_code(code), domain)

    slots, said = await type_code(sms, code, domain)

    assert slots["reg_email_code"] is None
    assert said == ["Kode itu sudah tidak berlaku. Ketik ULANG untuk kode baru."]
    assert len(registry.mailer.sent) == 1
    registry.clock.advance(minutes=16)  # expired too now: as any expired code
    await type_code(sms, code, domain)
    assert len(registry.mailer.sent) == 2


async def test_an_expired_code_at_the_code_limit_says_how_long_to_wait(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    for _ in range(8):  # the day's eight codes, each left to expire
        code = await sent_code(registry, sms, domain)
        registry.clock.advance(minutes=16)

    slots, said = await type_code(sms, code, domain)

    assert said[0] == "Kode itu sudah tidak berlaku."
    assert said[1] == "Sudah terlalu banyak kode dikirim. Coba lagi besok."
    assert len(said) == 2 and len(registry.mailer.sent) == 8
    assert slots["reg_email"] is None, "no code to type: the e-mail asked again"
    assert slots["reg_email_code"] is None


async def ulang_at_the_limit(
    registry: Registry, sms: str, domain: DomainDict
) -> tuple[dict[str, Any], list[str]]:
    """ULANG at the code question, by someone who consented and gave a name."""
    registry.desk.give_consent(registry.caller(sms))
    answered = {"reg_name": NAME, "reg_email": EMAIL}
    return await validate(sms, "reg_email_code", "ULANG", domain, answered)


async def test_ulang_at_the_code_limit_keeps_the_email_while_the_last_code_works(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    """The code found in the spam folder after the limit: still typed in."""
    for _ in range(3):
        last = await sent_code(registry, sms, domain)

    slots, said = await ulang_at_the_limit(registry, sms, domain)

    assert said == [
        "Sudah terlalu banyak kode dikirim. Kode terakhir di emailmu masih "
        "berlaku; kode baru bisa diminta 15 menit lagi."
    ]
    assert "reg_email" not in slots and slots["reg_email_code"] is None
    assert slots["requested_slot"] == "reg_email_code", "the code asked again"
    assert len(registry.mailer.sent) == 3
    typed, _ = await type_code(sms, last, domain)
    assert typed["reg_email_code"] == CODE_OK


async def test_ulang_at_the_code_limit_without_a_code_to_type_asks_the_email(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    for _ in range(3):
        last = await sent_code(registry, sms, domain)
    for _ in range(5):  # the last code tried too often
        await type_code(sms, wrong_code(last), domain)

    slots, said = await ulang_at_the_limit(registry, sms, domain)

    assert said == ["Sudah terlalu banyak kode dikirim. Coba lagi 15 menit lagi."]
    assert slots["reg_email"] is None and slots["requested_slot"] == "reg_email"


async def test_a_new_address_at_the_code_step_replaces_the_email(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    await sent_code(registry, sms, domain)

    slots, _ = await validate(
        sms,
        "reg_email_code",
        "budi.santoso@gmail.com",
        domain,
        answered={"reg_email": EMAIL},
    )

    assert kept(sms, slots["reg_email"]) == "budi.santoso@gmail.com"
    assert slots["reg_email_code"] is None
    assert registry.mailer.last.to == "budi.santoso@gmail.com"


async def test_too_many_codes_say_how_long_to_wait(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    for _ in range(3):
        await sent_code(registry, sms, domain)

    slots, said = await validate(sms, "reg_email", EMAIL, domain)

    assert slots["reg_email"] is None
    assert said == ["Sudah terlalu banyak kode dikirim. Coba lagi 15 menit lagi."]
    assert len(registry.mailer.sent) == 3


async def test_a_mail_that_cannot_be_sent_is_told(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    registry.mailer.failing = True

    slots, said = await validate(sms, "reg_email", EMAIL, domain)

    assert slots["reg_email"] is None
    assert said[0].startswith("Maaf, email belum bisa dikirim saat ini.")


# --- NIK, KK and birth date --------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("12345", "NIK harus 16 digit, yang kamu kirim 5 digit."),
        ("9974011508900001", "Dua digit pertama NIK (99) bukan kode provinsi"),
        ("3174013213900001", "Digit ke-7 sampai ke-12 NIK (tanggal lahir) tidak"),
        ("31740115089000ab", "NIK hanya boleh berisi angka"),
    ],
    ids=["length", "province", "date-part", "letters"],
)
async def test_an_invalid_nik_gets_a_precise_message(
    sms: str, domain: DomainDict, answer: str, message: str
) -> None:
    slots, said = await validate(sms, "reg_nik", answer, domain)

    assert slots["reg_nik"] is None
    assert said[0].startswith(message)


async def test_a_nik_is_kept_without_separators(sms: str, domain: DomainDict) -> None:
    slots, said = await validate(sms, "reg_nik", "3174 0115 0890 0001", domain)

    assert kept(sms, slots["reg_nik"]) == NIK and said == []


def gateway_tokens(registry: Registry, pseudonym: str, text: str) -> str:
    """`text` as the gateway hands it to Rasa in that conversation."""
    with registry.sessions() as session:
        conversation = conversation_of(session, pseudonym)
    assert conversation is not None
    vault = Vault(registry.sessions, clock=registry.clock)
    handed, _ = vault.tokenize_turn(conversation, text, {})
    return handed


async def test_answers_the_gateway_tokenized_are_validated_as_typed(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    """Rasa only has tokens: each validator reveals what the person typed,
    and keeps what it accepted as a new token."""
    typed_nik = gateway_tokens(registry, sms, "3174 0115 0890 0001")
    assert "3174" not in typed_nik
    slots, said = await validate(sms, "reg_nik", typed_nik, domain)
    assert said == [] and kept(sms, slots["reg_nik"]) == NIK
    nik_token = slots["reg_nik"]

    as_kk = gateway_tokens(registry, sms, NIK)
    slots, said = await validate(
        sms, "reg_kk", as_kk, domain, answered={"reg_nik": nik_token}
    )
    assert slots["reg_kk"] is None and said[0].startswith("Itu NIK kamu.")

    typed_date = gateway_tokens(registry, sms, "15 agustus 1990")
    answered = {"reg_nik": nik_token, "reg_kk": NIK}
    slots, said = await validate(
        sms, "reg_birth_date", typed_date, domain, answered=answered
    )
    assert said == [] and kept(sms, slots["reg_birth_date"]) == BORN


async def test_nik_kk_and_birth_date_in_one_message_fill_all_three(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    """One SMS instead of three: the gateway tokenizes each value, and each is
    checked as if typed alone."""
    typed = gateway_tokens(registry, sms, f"{NIK} {KK} 15-08-1990")
    assert NIK not in typed and KK not in typed

    slots, said = await validate(sms, "reg_nik", typed, domain)

    assert said == []
    assert kept(sms, slots["reg_nik"]) == NIK
    assert kept(sms, slots["reg_kk"]) == KK
    assert kept(sms, slots["reg_birth_date"]) == BORN


async def test_a_wrong_kk_in_one_message_keeps_the_nik_and_asks_again(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    typed = gateway_tokens(registry, sms, f"{NIK}, {NIK} 15-08-1990")

    slots, said = await validate(sms, "reg_nik", typed, domain)

    assert kept(sms, slots["reg_nik"]) == NIK
    assert slots["reg_kk"] is None and said[0].startswith("Itu NIK kamu.")


async def test_an_expired_token_is_asked_for_again(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    typed = gateway_tokens(registry, sms, NIK)
    registry.clock.advance(days=8)

    slots, said = await validate(sms, "reg_nik", typed, domain)

    assert slots["reg_nik"] is None
    assert NIK not in " ".join(said) and said


async def test_the_nik_typed_as_kk_is_refused(sms: str, domain: DomainDict) -> None:
    slots, said = await validate(sms, "reg_kk", NIK, domain, answered={"reg_nik": NIK})

    assert slots["reg_kk"] is None
    assert said[0].startswith("Itu NIK kamu.")


async def test_a_kk_is_kept(sms: str, domain: DomainDict) -> None:
    slots, _ = await validate(sms, "reg_kk", KK, domain, answered={"reg_nik": NIK})

    assert kept(sms, slots["reg_kk"]) == KK


async def test_a_nik_and_a_kk_inside_a_sentence_are_kept(
    sms: str, domain: DomainDict
) -> None:
    slots, said = await validate(sms, "reg_nik", "nik saya 3174 0115 0890 0001", domain)
    assert said == [] and kept(sms, slots["reg_nik"]) == NIK

    slots, said = await validate(
        sms, "reg_kk", f"No. KK: {KK} ya", domain, answered={"reg_nik": NIK}
    )
    assert said == [] and kept(sms, slots["reg_kk"]) == KK


async def form_ready_for_birth_date(
    registry: Registry, alias: str
) -> dict[str, object]:
    """Answers up to the KK, with consent and the e-mail proven in the desk."""
    caller = registry.caller(alias)
    registry.desk.give_consent(caller)
    request = registry.desk.request_email_code(caller, EMAIL)
    assert request.code is not None
    assert registry.desk.check_email_code(caller, request.code).ok
    return {key: ALL_ANSWERS[key] for key in ALL_ANSWERS if key != "reg_birth_date"}


async def test_a_birth_date_matching_the_nik_completes_the_form(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    answered = await form_ready_for_birth_date(registry, sms)

    slots, said = await validate(sms, "reg_birth_date", "15-08-1990", domain, answered)

    assert kept(sms, slots["reg_birth_date"]) == BORN
    assert slots["requested_slot"] is None
    assert said == []


async def test_a_birth_date_unlike_the_nik_is_confirmed(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    answered = await form_ready_for_birth_date(registry, sms)

    slots, _ = await validate(sms, "reg_birth_date", "16-08-1990", domain, answered)

    assert kept(sms, slots["reg_birth_date"]) == "1990-08-16"
    assert slots["requested_slot"] == "reg_birth_confirm"
    dispatcher = CollectingDispatcher()
    tracker = form_tracker(
        sms,
        "reg_birth_confirm",
        "",
        answered={**answered, "reg_birth_date": "1990-08-16"},
    )
    required = await ValidateRegistrationForm().required_slots(
        [], dispatcher, tracker, domain
    )
    assert required[-1] == "reg_birth_confirm"
    await ActionAskRegBirthConfirm().run(dispatcher, tracker, domain)
    question = texts(dispatcher)[0]
    assert "Tanggal lahir yang kamu ketik berbeda" in question
    # The date is not repeated: the transcript and Rasa's tracker keep the reply.
    assert not re.search(r"\d", question.replace("ke-7 sampai ke-12", ""))


async def test_yes_keeps_a_birth_date_unlike_the_nik(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    answered = {
        **await form_ready_for_birth_date(registry, sms),
        "reg_birth_date": "1990-08-16",
    }

    slots, _ = await validate(sms, "reg_birth_confirm", "ya", domain, answered)

    assert slots["reg_birth_confirm"] is True
    assert slots["requested_slot"] is None


async def test_no_asks_for_the_birth_date_again(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    answered = {
        **await form_ready_for_birth_date(registry, sms),
        "reg_birth_date": "1990-08-16",
    }

    slots, _ = await validate(sms, "reg_birth_confirm", "tidak", domain, answered)

    assert slots["reg_birth_date"] is None and slots["reg_birth_confirm"] is None
    assert slots["requested_slot"] == "reg_birth_date"


async def test_a_new_date_at_the_confirmation_replaces_the_old(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    answered = {
        **await form_ready_for_birth_date(registry, sms),
        "reg_birth_date": "1990-08-16",
    }

    slots, _ = await validate(sms, "reg_birth_confirm", "15-08-1990", domain, answered)

    assert kept(sms, slots["reg_birth_date"]) == BORN
    assert slots["requested_slot"] is None


# --- submitting --------------------------------------------------------------------


async def test_a_complete_form_registers_and_the_nik_is_checked(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    answered = await form_ready_for_birth_date(registry, sms)
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(
        sms, "15-08-1990", "inform", slots={**answered, "reg_birth_date": BORN}
    )

    events = await ActionSubmitRegistration().run(dispatcher, tracker, domain)

    assert "sedang dicek" in texts(dispatcher)[0]
    assert slots_of(events) == dict.fromkeys(REG_SLOTS)
    applicant_id = registry.caller(sms).applicant_id
    assert applicant_id is not None
    with registry.sessions() as session:
        applicant = get_applicant(session, applicant_id)
        steps = applicant_steps(session, applicant_id)
    assert (applicant.nik, applicant.phone, applicant.full_name) == (NIK, PHONE, NAME)
    assert steps["nik"].status == STEP_PENDING


async def test_an_unproven_email_is_not_submitted(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    dispatcher = CollectingDispatcher()
    slots = {**ALL_ANSWERS, "reg_email_code": None}
    tracker = chat_tracker(sms, "15-08-1990", "inform", slots=slots)

    events = await ActionSubmitRegistration().run(dispatcher, tracker, domain)

    assert texts(dispatcher) == [
        "Ada data yang belum lengkap. Ketik DAFTAR untuk melanjutkan."
    ]
    assert events == []
    assert registry.count(Applicant) == 0


async def test_a_correction_is_submitted_without_the_email_again(
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
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(sms, "15-08-1990", "inform", slots=corrected)

    await ActionSubmitRegistration().run(dispatcher, tracker, domain)

    assert texts(dispatcher)[0].startswith("Perbaikan data diterima.")
    with registry.sessions() as session:
        applicant = get_applicant(session, applicant_id)
        steps = applicant_steps(session, applicant_id)
    assert (applicant.nik, applicant.full_name) == (
        "3174011508900002",
        "SITI RAHAYU PUTRI",
    )
    assert steps["nik"].status == STEP_PENDING


async def test_outside_the_gateway_nothing_is_registered(
    registry: Registry, domain: DomainDict
) -> None:
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker("rest-client", "15-08-1990", "inform", slots=ALL_ANSWERS)

    await ActionSubmitRegistration().run(dispatcher, tracker, domain)

    assert "Telegram atau SMS" in texts(dispatcher)[0]
    assert registry.count(Applicant) == 0
    assert registry.count(ChannelIdentity) == 0


# --- status ------------------------------------------------------------------------


async def status(alias: str, metadata: dict[str, object] | None = None) -> list[str]:
    """Run the status action; what it said."""
    dispatcher = CollectingDispatcher()
    intent = "EXTERNAL_nik_checked" if metadata else "check_status"
    tracker = chat_tracker(alias, "status", intent, metadata=metadata)
    await ActionRegistrationStatus().run(dispatcher, tracker, {})
    return texts(dispatcher)


async def test_a_registered_sms_caller_sees_every_step(
    registry: Registry, sms: str
) -> None:
    applicant_id = registry.register(sms)
    registry.nik_checked(applicant_id)
    registry.open_batch(5)

    (text,) = await status(sms)

    lines = text.splitlines()
    assert "Email: terverifikasi" in lines
    assert "NIK: cocok dengan Dukcapil" in lines
    assert "Gelombang: belum ikut" in lines
    assert "Seleksi: -" in lines
    # On SMS the next action comes first, so it is on the first page.
    assert lines[0].startswith("Berikutnya: ketik GABUNG untuk ikut Gelombang 5")


async def test_a_linked_caller_gets_a_join_button(
    registry: Registry, telegram: str
) -> None:
    applicant_id = registry.register(telegram)
    registry.nik_checked(applicant_id)
    registry.open_batch(5)
    dispatcher = CollectingDispatcher()

    await ActionRegistrationStatus().run(
        dispatcher, chat_tracker(telegram, "status", "check_status"), {}
    )

    (message,) = dispatcher.messages
    assert [button["payload"] for button in message["buttons"]] == [
        '/join_batch{"batch_number":"5"}'
    ]


async def test_a_stranger_sms_number_learns_nothing(
    registry: Registry, sms: str
) -> None:
    registry.register(sms)
    stranger = registry.conversation(SMS, STRANGER_PHONE)

    (text,) = await status(stranger)

    assert text.startswith("Nomor HP ini belum terdaftar.")
    for secret in (NIK, NIK[-4:], KK, NAME, "SITI", EMAIL, PHONE, "Gelombang"):
        assert secret not in text


async def test_an_unlinked_telegram_account_is_offered_linking(
    registry: Registry, telegram: str
) -> None:
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(telegram, "status", "check_status")

    await ActionRegistrationStatus().run(dispatcher, tracker, {})

    (message,) = dispatcher.messages
    assert "HUBUNGKAN" in message["text"]
    assert "/link_account" in [button["payload"] for button in message["buttons"]]


@pytest.mark.parametrize(
    "metadata",
    [{"internal": True}, {"internal": "nik_checked"}],
    ids=["gateway", "named"],
)
async def test_a_finished_nik_check_is_told(
    registry: Registry, sms: str, metadata: dict[str, object]
) -> None:
    applicant_id = registry.register(sms)
    registry.nik_checked(applicant_id, "data_mismatch")

    (text,) = await status(sms, metadata)

    assert text.startswith("Cek NIK belum berhasil.")
    assert REASONS["data_mismatch"] in text


def refuse_data(registry: Registry, applicant_id: int, times: int) -> None:
    """NIK checks that found the data wrong, `times` over (with a correction
    queuing the next one)."""
    for _ in range(times):
        with registry.sessions() as session, session.begin():
            enqueue_job(session, applicant_id, "nik", now=registry.clock())
            (job,) = claim_jobs(session, "test", now=registry.clock())
            complete_job(session, job.id, "test", "data_mismatch", now=registry.clock())
            set_step(
                session, applicant_id, STEP_NIK, STEP_FAILED, reason="data_mismatch"
            )


async def test_a_second_refusal_after_a_correction_goes_to_a_person(
    registry: Registry, sms: str
) -> None:
    applicant_id = registry.register(sms)
    with registry.sessions() as session, session.begin():
        claim_jobs(session, "setup", now=registry.clock())  # the registration's job
        session.execute(delete(VerificationJob))
    refuse_data(registry, applicant_id, 2)
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(sms, "/check_status", "check_status")
    tracker.latest_message["metadata"] = {"internal": "nik_checked"}

    await ActionRegistrationStatus().run(dispatcher, tracker, {})

    result, handed = texts(dispatcher)
    assert result.startswith("Cek NIK belum berhasil.")
    assert handed.startswith("Datamu masih belum cocok setelah diperbaiki")
    assert "Posisimu: ke-1" in handed
    with registry.sessions() as session:
        (ticket,) = session.execute(select(Ticket)).scalars()
    assert (ticket.reason, ticket.status, ticket.applicant_id) == (
        "unfixable",
        "open",
        applicant_id,
    )


async def test_a_first_refusal_is_told_without_a_ticket(
    registry: Registry, sms: str
) -> None:
    applicant_id = registry.register(sms)
    with registry.sessions() as session, session.begin():
        session.execute(delete(VerificationJob))
    refuse_data(registry, applicant_id, 1)

    (text,) = await status(sms, {"internal": "nik_checked"})

    assert text.startswith("Cek NIK belum berhasil.")
    assert registry.count(Ticket) == 0


async def test_after_the_agent_the_bot_says_what_is_next(
    registry: Registry, sms: str
) -> None:
    applicant_id = registry.register(sms)
    registry.nik_checked(applicant_id)
    registry.open_batch(5)

    (text,) = await status(sms, {"internal": "handoff_resolved"})

    assert text.startswith("Percakapan dengan petugas selesai.")
    assert "Berikutnya: ketik GABUNG untuk ikut Gelombang 5" in text


async def test_after_the_agent_an_unregistered_person_gets_the_bot_back(
    registry: Registry, sms: str
) -> None:
    (text,) = await status(sms, {"internal": "handoff_resolved"})

    assert text.startswith("Percakapan dengan petugas selesai.")
    assert "Ada lagi yang bisa saya bantu" in text


async def test_a_finished_check_for_an_unlinked_chat_says_nothing(
    registry: Registry, sms: str
) -> None:
    assert await status(sms, {"internal": True}) == []


# --- joining -----------------------------------------------------------------------


async def join(alias: str, text: str = "gabung") -> list[str]:
    """Run the join action; what it said."""
    dispatcher = CollectingDispatcher()
    await ActionJoinBatch().run(dispatcher, chat_tracker(alias, text, "join_batch"), {})
    return texts(dispatcher)


async def test_joining_the_open_batch_is_harmless_when_repeated(
    registry: Registry, sms: str
) -> None:
    applicant_id = registry.register(sms)
    registry.nik_checked(applicant_id)
    registry.open_batch(5)

    first = await join(sms)
    second = await join(sms)

    assert first[0].startswith("Berhasil! Kamu ikut Gelombang 5.")
    assert second[0].startswith("Kamu sudah ikut Gelombang 5.")
    with registry.sessions() as session:
        batch = batch_by_number(session, 5)
    assert batch is not None and batch.joined_count == 1


async def test_a_batch_number_in_the_payload_is_used(
    registry: Registry, sms: str
) -> None:
    applicant_id = registry.register(sms)
    registry.nik_checked(applicant_id)
    registry.open_batch(5)
    registry.open_batch(7)

    said = await join(sms, '/join_batch{"batch_number":"7"}')

    assert said[0].startswith("Berhasil! Kamu ikut Gelombang 7.")


async def test_joining_before_registering_says_so(registry: Registry, sms: str) -> None:
    registry.open_batch(5)

    said = await join(sms)

    assert said[0].startswith("Nomor HP ini belum terdaftar.")


# --- help ----------------------------------------------------------------------------


async def test_a_nik_problem_shows_the_failure_reason(
    registry: Registry, sms: str
) -> None:
    applicant_id = registry.register(sms)
    registry.nik_checked(applicant_id, "unknown_nik")
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker(sms, "nik saya ditolak", "nik_problem")

    await ActionRegistrationHelp().run(dispatcher, tracker, {})

    (text,) = texts(dispatcher)
    # On SMS what to do comes first (the first page), then the reason.
    assert text.endswith(REASONS["unknown_nik"])
    assert text.startswith(
        "Berikutnya: ketik DAFTAR untuk memperbaiki NIK, KK, nama atau tanggal lahir."
    )


ASKED_BEFORE = [None, "reg_email", "link_nik"]
"""`requested_slot` as the form opens: nothing, a question of a session that
expired mid-form (slots carry over), the link form's."""


async def open_form(
    alias: str,
    domain: DomainDict,
    slots: dict[str, Any] | None = None,
    asked_before: str | None = None,
) -> tuple[list[EventDict], CollectingDispatcher]:
    """The validator's call when the registration form opens: (events, what
    was said); `asked_before`: see `opening_tracker`."""
    form = ValidateRegistrationForm()
    return await open_form_with(
        form, alias, domain, slots=slots, asked_before=asked_before
    )


@pytest.mark.parametrize("asked_before", ASKED_BEFORE)
async def test_a_correctable_registration_is_typed_again(
    registry: Registry, sms: str, domain: DomainDict, asked_before: str | None
) -> None:
    applicant_id = registry.register(sms)
    registry.nik_checked(applicant_id, "data_mismatch")

    events, dispatcher = await open_form(
        sms, domain, ALL_ANSWERS, asked_before=asked_before
    )

    slots = slots_of(events)
    assert all(slots[name] is None for name in ("reg_name", "reg_nik", "reg_kk"))
    assert slots["reg_birth_date"] is None
    assert slots["requested_slot"] == "reg_name"
    # The old answers are forgotten, not checked again: one message only.
    assert len(texts(dispatcher)) == 1 and "perbaiki" in texts(dispatcher)[0]


@pytest.mark.parametrize("asked_before", ASKED_BEFORE)
async def test_a_new_person_is_asked_for_consent_first(
    sms: str, domain: DomainDict, asked_before: str | None
) -> None:
    events, dispatcher = await open_form(sms, domain, asked_before=asked_before)

    assert slots_of(events) == {"requested_slot": "reg_consent"}
    assert dispatcher.messages == []  # the consent question itself opens it


@pytest.mark.parametrize("asked_before", ASKED_BEFORE)
async def test_with_consent_given_opening_says_what_happens(
    registry: Registry, sms: str, domain: DomainDict, asked_before: str | None
) -> None:
    registry.desk.give_consent(registry.caller(sms))

    events, dispatcher = await open_form(sms, domain, asked_before=asked_before)

    assert slots_of(events) == {"requested_slot": "reg_name"}
    assert texts(dispatcher) == [say("registration.start")]


@pytest.mark.parametrize("asked_before", ASKED_BEFORE)
async def test_an_unfinished_registration_is_resumed(
    registry: Registry, sms: str, domain: DomainDict, asked_before: str | None
) -> None:
    registry.desk.give_consent(registry.caller(sms))
    kept = {"reg_consent": True, "reg_name": NAME, "reg_email": EMAIL}

    events, dispatcher = await open_form(sms, domain, kept, asked_before=asked_before)

    assert slots_of(events) == {"requested_slot": "reg_email_code"}
    # The kept answers are not validated again: no consent question, no mail.
    assert [m["response"] for m in dispatcher.messages] == [
        "utter_registration_continue"
    ]
    assert registry.mailer.sent == []


async def test_a_registered_person_opening_the_form_is_not_asked_again(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    registry.nik_checked(registry.register(sms))

    events, dispatcher = await open_form(sms, domain)

    assert slots_of(events) == {"requested_slot": None}  # the submit tells the status
    assert dispatcher.messages == []


async def test_opening_outside_the_gateway_says_nothing(domain: DomainDict) -> None:
    events, dispatcher = await open_form("not-a-conversation", domain)

    assert slots_of(events) == {"requested_slot": None}  # the submit says why
    assert dispatcher.messages == []


async def test_an_answer_inside_the_open_form_says_no_opening(
    registry: Registry, sms: str, domain: DomainDict
) -> None:
    registry.desk.give_consent(registry.caller(sms))

    _, said = await validate(sms, "reg_name", "Siti Rahayu", domain)

    assert say("registration.start") not in said


# --- linking a Telegram account ----------------------------------------------------


async def test_only_an_unlinked_telegram_account_is_asked_to_link(
    registry: Registry, sms: str, telegram: str, domain: DomainDict
) -> None:
    form = ValidateLinkForm()
    dispatcher = CollectingDispatcher()

    for_telegram = await form.required_slots(
        [], dispatcher, form_tracker(telegram, "link_nik", "", form=LINK_FORM), domain
    )
    for_sms = await form.required_slots(
        [], dispatcher, form_tracker(sms, "link_nik", "", form=LINK_FORM), domain
    )

    assert for_telegram == ["link_nik", "link_code"]
    assert for_sms == []


async def test_a_telegram_account_links_with_the_mailed_code(
    registry: Registry, sms: str, telegram: str, domain: DomainDict
) -> None:
    applicant_id = registry.register(sms)
    mails_before = len(registry.mailer.sent)

    slots, _ = await validate(
        telegram, "link_nik", f"nik saya {NIK}", domain, form=LINK_FORM
    )

    assert slots["link_nik"] == "sent"
    assert len(registry.mailer.sent) == mails_before + 1
    mail = registry.mailer.last
    assert mail.to == EMAIL
    slots, _ = await validate(
        telegram,
        "link_code",
        mail.code,
        domain,
        answered={"link_nik": "sent"},
        form=LINK_FORM,
    )
    assert slots["link_code"] == "linked"
    caller = registry.caller(telegram)
    assert caller.applicant_id == applicant_id
    with registry.sessions() as session:
        assert get_identity(session, caller.identity_id).link_method == LINK_EMAIL_CODE
    dispatcher = CollectingDispatcher()
    await ActionLinkDone().run(
        dispatcher, chat_tracker(telegram, mail.code, "inform"), domain
    )
    assert texts(dispatcher)[0].startswith("Akun ini terhubung ke pendaftaranmu.")


async def test_an_unknown_nik_gets_the_same_reply_and_no_mail(
    registry: Registry, sms: str, telegram: str, domain: DomainDict
) -> None:
    registry.register(sms)
    mails_before = len(registry.mailer.sent)

    slots, said = await validate(
        telegram, "link_nik", "3174011508900002", domain, form=LINK_FORM
    )

    assert slots["link_nik"] == "sent" and said == []
    assert len(registry.mailer.sent) == mails_before


async def test_linking_again_after_a_session_expired_mid_way_starts_at_the_nik(
    registry: Registry, sms: str, telegram: str, domain: DomainDict
) -> None:
    """Rasa carries the slots of a session over: the NIK answered ("sent") an
    hour ago is not an answer to validate again (it read as a wrong NIK), nor a
    reason to ask at once for a code that is dead by now."""
    registry.register(sms)

    events, dispatcher = await open_form_with(
        ValidateLinkForm(),
        telegram,
        domain,
        slots={"link_nik": "sent"},
        asked_before="link_code",
        form=LINK_FORM,
        text="/link_account",
        intent="link_account",
    )

    # Rasa's form then asks for the first empty slot: the NIK.
    assert slots_of(events) == {"link_nik": None}
    assert dispatcher.messages == [], "no error for a NIK nobody typed"


LINK_AGAIN = (
    "Kodenya salah atau sudah tidak berlaku. Cek lagi kode terbaru di email yang "
    "terdaftar."
)


def wrong_code(code: str) -> str:
    """Another six-digit code."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_a_wrong_link_code_is_asked_again(
    registry: Registry, sms: str, telegram: str, domain: DomainDict
) -> None:
    registry.register(sms)
    await validate(telegram, "link_nik", NIK, domain, form=LINK_FORM)

    slots, said = await validate(
        telegram,
        "link_code",
        wrong_code(registry.mailer.last.code),
        domain,
        answered={"link_nik": "sent"},
        form=LINK_FORM,
    )

    assert slots["link_code"] is None
    assert said == [LINK_AGAIN]
    assert registry.caller(telegram).applicant_id is None


@pytest.mark.parametrize("registered", [True, False], ids=["registered", "unknown"])
async def test_a_wrong_link_code_never_tells_whether_the_nik_is_registered(
    registry: Registry,
    sms: str,
    telegram: str,
    domain: DomainDict,
    registered: bool,
) -> None:
    registry.register(sms)
    typed = NIK if registered else "3174011508900002"
    await validate(telegram, "link_nik", typed, domain, form=LINK_FORM)
    refused: list[EventDict] = []
    replies = []

    for _ in range(5):
        slots, said = await validate(
            telegram,
            "link_code",
            "000000",
            domain,
            answered={"link_nik": "sent"},
            form=LINK_FORM,
            earlier=refused,
        )
        replies.append((slots["link_code"], said))
        refused.append(SlotSet("link_code", None))

    assert replies == [(None, [LINK_AGAIN])] * 4 + [("failed", [])]
    assert registry.caller(telegram).applicant_id is None


async def test_an_invalid_nik_to_link_is_explained(
    registry: Registry, telegram: str, domain: DomainDict
) -> None:
    slots, said = await validate(telegram, "link_nik", "12345", domain, form=LINK_FORM)

    assert slots["link_nik"] is None
    assert said == ["NIK harus 16 digit, yang kamu kirim 5 digit."]
    assert registry.mailer.sent == []
