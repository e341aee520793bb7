"""The actions kept for the previous model's Rasa pods during a rolling update."""

from __future__ import annotations

from typing import Any

from rasa_sdk.executor import CollectingDispatcher

from actions.retired import ActionAnswerFaq, ActionRegistrationStart
from bot.policy.answers import render_answer
from bot.policy.programme import load_policy


async def test_the_old_faq_action_answers_as_rasa_now_does(chat_tracker: Any) -> None:
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker("mahasiswa boleh ikut?", "ask_eligibility")

    assert await ActionAnswerFaq().run(dispatcher, tracker, {}) == []

    expected = render_answer("ask_eligibility", load_policy(), "mahasiswa boleh ikut?")
    assert [m["text"] for m in dispatcher.messages] == [expected]


async def test_the_old_faq_action_asks_to_rephrase_a_non_question(
    chat_tracker: Any,
) -> None:
    dispatcher = CollectingDispatcher()

    await ActionAnswerFaq().run(dispatcher, chat_tracker("hmm", "greet"), {})

    assert [m["response"] for m in dispatcher.messages] == ["utter_please_rephrase"]


async def test_the_old_registration_start_leaves_the_opening_to_the_form(
    chat_tracker: Any,
) -> None:
    dispatcher = CollectingDispatcher()
    tracker = chat_tracker("daftar", "start_registration")

    assert await ActionRegistrationStart().run(dispatcher, tracker, {}) == []
    assert dispatcher.messages == []
