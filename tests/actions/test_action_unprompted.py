"""action_inform_unprompted: a dead code typed outside a form, or data sent unasked."""

from collections.abc import Callable

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.unprompted import ActionInformUnprompted, is_code_alone
from bot.channels.sms.gsm7 import segment_info
from bot.policy.catalogue import say
from tests.actions.conftest import build_tracker, user_event

CODE_TEXT = say("registration.code_unprompted", minutes=15)


async def answer(text: str) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    tracker: Tracker = build_tracker([user_event(text, "inform")])
    assert await ActionInformUnprompted().run(dispatcher, tracker, {}) == []
    return dispatcher


@pytest.mark.parametrize(
    "text",
    [
        "482913",
        " 482913 ",
        "482 913",
        "kodenya 482913",
        "Kode: 093817",
        "ini kode saya 555123.",
    ],
)
async def test_a_code_alone_is_told_how_to_get_a_new_one(text: str) -> None:
    dispatcher = await answer(text)
    assert [m["text"] for m in dispatcher.messages] == [CODE_TEXT]
    assert "15 menit" in CODE_TEXT and "HUBUNGKAN" in CODE_TEXT


@pytest.mark.parametrize(
    "text",
    [
        "ini email aku sari.wulandari07@yahoo.co.id",
        "12345",  # not a code's length
        "1234567",
        "081234567890",  # a phone number
        "0000123456789012",  # a NIK's token
        "482913 482913",
        "umur 482913",
    ],
)
async def test_anything_else_unasked_is_the_personal_data_notice(text: str) -> None:
    dispatcher = await answer(text)
    assert [m.get("response") for m in dispatcher.messages] == [
        "utter_inform_unprompted"
    ]
    assert not is_code_alone(text)


def test_the_code_notice_is_one_sms_segment(sms_safe: Callable[[str], None]) -> None:
    sms_safe(CODE_TEXT)
    assert segment_info(CODE_TEXT).segments == 1
