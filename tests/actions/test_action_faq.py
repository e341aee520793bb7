"""action_answer_faq (answers rendered from the policy) and action_handoff
outside the gateway (the call center of the policy)."""

from __future__ import annotations

from datetime import datetime

import pytest
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.faq import ActionAnswerFaq
from actions.handoff import ActionHandoff
from bot.clock import WIB
from bot.policy.answers import FAQ_INTENTS, call_center_text
from bot.policy.programme import format_rupiah, load_policy

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


def test_every_faq_intent_is_declared_in_the_domain(domain: DomainDict) -> None:
    assert set(domain["intents"]) >= FAQ_INTENTS


@pytest.mark.parametrize("intent", sorted(FAQ_INTENTS))
async def test_every_faq_intent_gets_an_sms_safe_answer(
    intent, chat_tracker, dispatcher: CollectingDispatcher, domain, sms_safe
) -> None:
    tracker = chat_tracker(QUESTIONS[intent], intent)

    events = await ActionAnswerFaq().run(dispatcher, tracker, domain)

    assert events == []
    assert len(dispatcher.messages) == 1
    message = dispatcher.messages[0]
    assert message["response"] is None
    sms_safe(message["text"])


async def test_student_question_mentions_students(
    chat_tracker, dispatcher, domain
) -> None:
    tracker = chat_tracker("mahasiswa boleh ikut?", "ask_eligibility")

    await ActionAnswerFaq().run(dispatcher, tracker, domain)

    (message,) = dispatcher.messages
    assert "mahasiswa" in message["text"].lower()


async def test_specific_question_differs_from_the_general_answer(
    chat_tracker, domain
) -> None:
    general, student = CollectingDispatcher(), CollectingDispatcher()

    await ActionAnswerFaq().run(
        general, chat_tracker("syaratnya apa aja", "ask_eligibility"), domain
    )
    await ActionAnswerFaq().run(
        student, chat_tracker("mahasiswa boleh ikut?", "ask_eligibility"), domain
    )

    assert general.messages[0]["text"] != student.messages[0]["text"]


async def _benefits_answer(chat_tracker, domain) -> str:
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker("total manfaatnya dapet berapa", "ask_benefits")
    await ActionAnswerFaq().run(dispatcher, tracker, domain)
    (message,) = dispatcher.messages
    return str(message["text"])


async def test_benefit_amounts_follow_the_selected_policy(
    chat_tracker, domain, use_policy
) -> None:
    default = load_policy()
    newer = load_policy("2023")
    assert default.benefits.total != newer.benefits.total

    default_answer = await _benefits_answer(chat_tracker, domain)
    use_policy("2023")
    newer_answer = await _benefits_answer(chat_tracker, domain)

    assert format_rupiah(default.benefits.total) in default_answer
    assert format_rupiah(default.benefits.training_balance) in default_answer
    assert format_rupiah(newer.benefits.total) in newer_answer
    assert format_rupiah(newer.benefits.training_balance) in newer_answer
    assert format_rupiah(default.benefits.total) not in newer_answer
    assert format_rupiah(newer.benefits.total) not in default_answer


@pytest.mark.parametrize("intent", ["greet", "nlu_fallback", "check_eligibility"])
async def test_non_faq_intent_asks_to_rephrase(
    intent, chat_tracker, dispatcher, domain
) -> None:
    tracker = chat_tracker("hmm", intent)

    events = await ActionAnswerFaq().run(dispatcher, tracker, domain)

    assert events == []
    assert [m["response"] for m in dispatcher.messages] == ["utter_please_rephrase"]
    assert "utter_please_rephrase" in domain["responses"]


async def test_handoff_without_a_conversation_gives_the_call_center(
    chat_tracker, dispatcher, domain, use_policy, sms_safe
) -> None:
    use_policy("2021")
    tracker = chat_tracker("sambungkan ke petugas", "request_human")

    events = await ActionHandoff().run(dispatcher, tracker, domain)

    assert events == []
    (message,) = dispatcher.messages
    assert message["text"].startswith(call_center_text(load_policy("2021")))
    sms_safe(message["text"])


@pytest.mark.parametrize(
    ("hour", "closed"), [(10, False), (22, True), (6, True)]
)
async def test_handoff_without_a_conversation_says_when_the_call_center_reopens(
    chat_tracker, dispatcher, domain, use_policy, monkeypatch, hour, closed
) -> None:
    use_policy("2021")
    now = datetime(2026, 11, 25, hour, 0, tzinfo=WIB)  # a Wednesday
    monkeypatch.setattr("actions.handoff.now_wib", lambda: now)
    tracker = chat_tracker("mau ngomong sama orang", "request_human")

    await ActionHandoff().run(dispatcher, tracker, domain)

    (message,) = dispatcher.messages
    assert message["text"] == call_center_text(load_policy("2021"), now)
    assert ("buka lagi" in message["text"]) is closed
