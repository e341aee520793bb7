"""The programme answers Rasa renders itself (`bot.rasa_nlg`): `utter_answer_faq`
from the policy, every other response from the domain."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.channels.sms.gsm7 import is_gsm7
from bot.policy.answers import FAQ_INTENTS
from bot.policy.programme import ENV_VAR, format_rupiah, load_policy
from bot.rasa_channel import (
    WRONG_GENERATOR,
    ready,
    report_unready,
    require_programme_answers,
)
from bot.rasa_nlg import FAQ_RESPONSE, NLG_TYPE, UNPROMPTED, ProgrammeAnswers
from bot.registration import CODE_OK

DOMAIN = Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml"))
ANSWERS = ProgrammeAnswers(EndpointConfig(type=NLG_TYPE), DOMAIN)

# A realistic question for every FAQ intent (the intent comes from the NLU).
QUESTIONS = {
    "ask_program_info": "prakerja itu program apaan sih",
    "ask_eligibility": "siapa aja yg boleh daftar",
    "ask_benefits": "dapet apa aja kalau lolos",
    "ask_how_to_register": "gmn cara daftarnya kak",
    "start_registration": "daftarin aku sekarang dong",
    "check_status": "status pendaftaranku gimana",
    "email_problem": "email verifikasi blm masuk",
    "nik_problem": "nik saya tidak terdaftar katanya",
    "photo_problem": "foto ktp gagal diupload",
    "otp_problem": "kode otp ga masuk2",
    "account_problem": "lupa password akun",
    "ask_test": "tesnya kayak apa",
    "ask_batch": "kapan gelombang berikutnya dibuka",
    "ask_selection_result": "kenapa sy ga lolos",
    "ask_training": "sertifikat pelatihan blm muncul",
    "ask_incentive": "insentif belum cair min",
    "ask_survey": "link survei ga muncul",
    "report_scam": "ada yg nawarin joki bayar 100rb",
}


def test_every_faq_intent_has_a_question() -> None:
    assert set(QUESTIONS) == set(FAQ_INTENTS)


def test_every_faq_intent_is_declared_in_the_domain() -> None:
    assert set(DOMAIN.intents) >= FAQ_INTENTS
    assert FAQ_RESPONSE in DOMAIN.responses  # the action Rasa runs


async def answer(text: str, intent: str, response: str = FAQ_RESPONSE) -> Any:
    """What Rasa says for `response` after the user's `text` (`intent`)."""
    tracker = DialogueStateTracker.from_events(
        "nlg-test", [UserUttered(text, {"name": intent, "confidence": 0.9})]
    )
    return await ANSWERS.generate(response, tracker, "telegram")


@pytest.mark.parametrize("intent", sorted(FAQ_INTENTS))
async def test_every_faq_intent_gets_an_sms_safe_answer(intent: str) -> None:
    message = await answer(QUESTIONS[intent], intent)

    assert set(message) == {"text"}
    assert message["text"].strip() and is_gsm7(message["text"]), message


async def test_student_question_mentions_students() -> None:
    message = await answer("mahasiswa boleh ikut?", "ask_eligibility")

    assert "mahasiswa" in message["text"].lower()


async def test_specific_question_differs_from_the_general_answer() -> None:
    general = await answer("syaratnya apa aja", "ask_eligibility")
    student = await answer("mahasiswa boleh ikut?", "ask_eligibility")

    assert general["text"] != student["text"]


async def test_benefit_amounts_follow_the_selected_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = load_policy()
    newer = load_policy("2023")
    assert default.benefits.total != newer.benefits.total

    default_answer = (await answer("total manfaatnya dapet berapa", "ask_benefits"))[
        "text"
    ]
    monkeypatch.setenv(ENV_VAR, "2023")
    newer_answer = (await answer("total manfaatnya dapet berapa", "ask_benefits"))[
        "text"
    ]

    assert format_rupiah(default.benefits.total) in default_answer
    assert format_rupiah(default.benefits.training_balance) in default_answer
    assert format_rupiah(newer.benefits.total) in newer_answer
    assert format_rupiah(newer.benefits.training_balance) in newer_answer
    assert format_rupiah(default.benefits.total) not in newer_answer
    assert format_rupiah(newer.benefits.total) not in default_answer


@pytest.mark.parametrize("intent", ["greet", "nlu_fallback", "check_eligibility"])
async def test_non_faq_intent_asks_to_rephrase(intent: str) -> None:
    message = await answer("hmm", intent)

    rephrase = DOMAIN.responses["utter_please_rephrase"][0]["text"]
    assert message["text"] == rephrase


@pytest.mark.parametrize("intent", ["greet", "ask_eligibility"])
async def test_other_responses_come_from_the_domain(intent: str) -> None:
    """Whatever the message asked, only utter_answer_faq is rendered here."""
    message = await answer("halo", intent, "utter_greet")

    assert message["text"] == DOMAIN.responses["utter_greet"][0]["text"]
    assert message.get("buttons") == DOMAIN.responses["utter_greet"][0]["buttons"]


PAUSED = {"reg_email": "t_k3j9x8a0qz@gmail.com", "reg_email_code": None}
"""The slots a session that expired at the code question carries over."""


async def unprompted(text: str, slots: dict[str, Any], quiet_days: float = 2.0) -> str:
    """What Rasa says to data given outside a form, with these slots, after
    `quiet_days` without a message (the form is no longer reopened then)."""
    now = time.time()
    tracker = DialogueStateTracker.from_events(
        "nlg-test",
        [
            UserUttered("email@gmail.com", timestamp=now - quiet_days * 86_400),
            *(SlotSet(name, value) for name, value in slots.items()),
            UserUttered(text, {"name": "inform", "confidence": 0.9}, timestamp=now),
        ],
    )
    return str((await ANSWERS.generate(UNPROMPTED, tracker, "twilio"))["text"])


@pytest.mark.parametrize("text", ["482913", "kodenya 482913", "ini kode nya: 482 913"])
async def test_a_code_for_a_registration_stopped_at_the_code_says_how_to_go_on(
    text: str,
) -> None:
    said = await unprompted(text, PAUSED)

    assert said.startswith("Sepertinya itu kode verifikasi email.")
    assert "DAFTAR" in said and is_gsm7(said)


async def test_a_code_after_a_week_gets_the_notice_the_e_mail_being_gone() -> None:
    """The vault's tokens, the registration's e-mail among them, are gone."""
    said = await unprompted("482913", PAUSED, quiet_days=8)

    assert said == DOMAIN.responses[UNPROMPTED][0]["text"]


@pytest.mark.parametrize(
    ("text", "slots"),
    [
        ("482913", {}),  # no registration waits for a code
        ("482913", {**PAUSED, "reg_email_code": CODE_OK}),  # the e-mail is proven
        ("3174011508900001", PAUSED),  # a NIK, not a code
        ("1234567", PAUSED),  # seven digits
        ("482913 dan 15-08-1990", PAUSED),  # more than a code
    ],
    ids=["no registration", "proven", "nik", "seven digits", "more than a code"],
)
async def test_other_data_unasked_gets_the_personal_data_notice(
    text: str, slots: dict[str, Any]
) -> None:
    said = await unprompted(text, slots)

    assert said == DOMAIN.responses[UNPROMPTED][0]["text"]


class _Processor:
    def __init__(self, nlg: Any) -> None:
        self.nlg = nlg


class _Agent:
    def __init__(self, nlg: Any) -> None:
        self.processor = _Processor(nlg)


class _LoadingAgent:
    processor = None


class _App:
    def __init__(self, agent: Any) -> None:
        self.ctx = SimpleNamespace(agent=agent)


class _Request:
    def __init__(self, agent: Any) -> None:
        self.app = _App(agent)


def test_the_gateway_channel_refuses_rasa_without_the_programme_answers() -> None:
    from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator

    require_programme_answers(_Agent(ANSWERS))
    with pytest.raises(RuntimeError, match=NLG_TYPE):
        require_programme_answers(_Agent(TemplatedNaturalLanguageGenerator({})))


async def test_rasa_is_ready_for_the_gateway_with_its_model_and_answers() -> None:
    answer = await ready(_Request(_Agent(ANSWERS)))  # type: ignore[arg-type]

    assert answer.status == 200
    assert json.loads(answer.body) == {"status": "ok"}


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        (None, "no model loaded"),
        (_LoadingAgent(), "no model loaded"),
        ("default", WRONG_GENERATOR),
    ],
    ids=["no agent yet", "model loading", "domain's responses only"],
)
async def test_rasa_is_not_ready_for_the_gateway_and_says_why(
    agent: Any, reason: str
) -> None:
    from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator

    if agent == "default":
        agent = _Agent(TemplatedNaturalLanguageGenerator(DOMAIN.responses))
    answer = await ready(_Request(agent))  # type: ignore[arg-type]

    assert answer.status == 503
    assert json.loads(answer.body) == {"status": "unready", "reason": reason}


async def test_rasa_started_without_the_answers_says_so_in_its_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator

    with caplog.at_level(logging.ERROR, logger="bot.rasa_channel"):
        await report_unready(_App(_Agent(ANSWERS)))
        assert not caplog.records
        await report_unready(_App(_Agent(TemplatedNaturalLanguageGenerator({}))))

    assert [r.getMessage() for r in caplog.records] == [
        f"Rasa cannot answer the gateway: {WRONG_GENERATOR}"
    ]


def test_every_endpoints_file_names_the_programme_answers() -> None:
    import yaml

    root = Path(__file__).resolve().parents[2]
    for name in ("endpoints.yml", "endpoints-scaled.yml"):
        config = yaml.safe_load((root / name).read_text(encoding="utf-8"))
        assert config["nlg"]["type"] == NLG_TYPE, name
    k8s = yaml.safe_load_all((root / "deploy/k8s/config.yaml").read_text("utf-8"))
    files = [
        doc["data"]["endpoints.yml"]
        for doc in k8s
        if "endpoints.yml" in doc.get("data", {})
    ]
    assert files and all(yaml.safe_load(f)["nlg"]["type"] == NLG_TYPE for f in files)
