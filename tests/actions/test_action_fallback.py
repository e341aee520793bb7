"""action_handle_fallback: rephrase once, then a person (outside the gateway:
the call center)."""

from __future__ import annotations

from rasa_sdk.events import UserUtteranceReverted

from actions.fallback import ActionHandleFallback
from bot.policy.answers import call_center_text
from bot.policy.programme import load_policy

REVERTED = UserUtteranceReverted()


def _handled_fallback(ev, text: str) -> list:
    """A misunderstood message as it stays in the tracker after the action ran."""
    return [
        ev.action("action_listen"),
        ev.user(text, "nlu_fallback", confidence=0.2),
        ev.action("action_handle_fallback"),
        ev.bot("Maaf, saya belum paham."),
        REVERTED,
    ]


async def test_first_fallback_asks_to_rephrase(
    chat_tracker, dispatcher, domain
) -> None:
    tracker = chat_tracker("asdf qwer", "nlu_fallback")

    events = await ActionHandleFallback().run(dispatcher, tracker, domain)

    assert events == [REVERTED]
    assert [m["response"] for m in dispatcher.messages] == ["utter_please_rephrase"]
    assert "utter_please_rephrase" in domain["responses"]


async def test_second_fallback_in_a_row_offers_the_call_center(
    chat_tracker, dispatcher, domain, ev, sms_safe
) -> None:
    history = _handled_fallback(ev, "asdf qwer")
    tracker = chat_tracker("ya itu pokoknya", "nlu_fallback", history)

    events = await ActionHandleFallback().run(dispatcher, tracker, domain)

    assert events == [REVERTED]
    (message,) = dispatcher.messages
    assert message["response"] is None
    assert call_center_text(load_policy()) in message["text"]
    sms_safe(message["text"])


async def test_call_center_text_follows_the_selected_policy(
    chat_tracker, dispatcher, domain, ev, use_policy
) -> None:
    use_policy("2023")
    history = _handled_fallback(ev, "asdf qwer")
    tracker = chat_tracker("ya itu pokoknya", "nlu_fallback", history)

    await ActionHandleFallback().run(dispatcher, tracker, domain)

    assert call_center_text(load_policy("2023")) in dispatcher.messages[0]["text"]


async def test_third_fallback_in_a_row_still_offers_the_call_center(
    chat_tracker, dispatcher, domain, ev
) -> None:
    history = _handled_fallback(ev, "a") + _handled_fallback(ev, "b")
    tracker = chat_tracker("c", "nlu_fallback", history)

    await ActionHandleFallback().run(dispatcher, tracker, domain)

    assert call_center_text(load_policy()) in dispatcher.messages[0]["text"]


async def test_fallback_after_a_normal_message_counts_as_first_again(
    chat_tracker, dispatcher, domain, ev
) -> None:
    history = [
        *_handled_fallback(ev, "asdf qwer"),
        ev.action("action_listen"),
        ev.user("halo min", "greet"),
        ev.action("utter_greet"),
        ev.bot("Halo!"),
    ]
    tracker = chat_tracker("brb lupa", "nlu_fallback", history)

    events = await ActionHandleFallback().run(dispatcher, tracker, domain)

    assert events == [REVERTED]
    assert [m["response"] for m in dispatcher.messages] == ["utter_please_rephrase"]
