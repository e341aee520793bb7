"""One conversation per channel through the gateway, Rasa and the action server.

The gateway, Rasa and the action server run as real processes; only the providers
are local fakes (the Telegram Bot API and Twilio's REST API), reached by the real
python-telegram-bot and twilio clients.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import CallbackQuery, Chat, Message, Update, User
from twilio.request_validator import RequestValidator

from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramApi
from tests.fakes.twilio_api import FakeTwilioApi
from tests.integration.conftest import RasaStack, start_gateway, stop

SECRET = "e2e-secret-token"
CHAT_ID = 5550001
PHONE = "+6281234500001"
WAIT = 60.0


def wait_for(check: Callable[[], Any], what: str) -> Any:
    """Poll until check() returns something truthy."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture()
def telegram_gateway(
    rasa_stack: RasaStack, tmp_path: Path
) -> Iterator[tuple[str, FakeTelegramApi]]:
    """The gateway wired to a fake Telegram Bot API."""
    with FakeTelegramApi() as api:
        proc, base = start_gateway(
            tmp_path,
            {
                "RASA_URL": rasa_stack.rasa_url,
                "ACTIONS_URL": rasa_stack.actions_url,
                "TELEGRAM_TOKEN": DEFAULT_TOKEN,
                "TELEGRAM_SECRET_TOKEN": SECRET,
                "TELEGRAM_API_URL": api.url,
            },
        )
        try:
            yield base, api
        finally:
            stop(proc)


@pytest.fixture()
def sms_gateway(
    rasa_stack: RasaStack, tmp_path: Path
) -> Iterator[tuple[str, FakeTwilioApi]]:
    """The gateway wired to a fake Twilio REST API."""
    with FakeTwilioApi() as api:
        proc, base = start_gateway(
            tmp_path,
            {
                "RASA_URL": rasa_stack.rasa_url,
                "ACTIONS_URL": rasa_stack.actions_url,
                "TWILIO_ACCOUNT_SID": api.account_sid,
                "TWILIO_AUTH_TOKEN": api.auth_token,
                "TWILIO_FROM_NUMBER": "+15005550006",
                "TWILIO_API_URL": api.url,
            },
        )
        try:
            yield base, api
        finally:
            stop(proc)


def _user() -> User:
    return User(id=CHAT_ID, first_name="Sari", is_bot=False)


def text_update(update_id: int, text: str) -> dict[str, Any]:
    """A real Telegram update with a private text message."""
    message = Message(
        message_id=update_id, date=datetime.now(timezone.utc),
        chat=Chat(id=CHAT_ID, type=Chat.PRIVATE), from_user=_user(), text=text,
    )
    return Update(update_id=update_id, message=message).to_dict()


def callback_update(update_id: int, data: str) -> dict[str, Any]:
    """A real Telegram update for a pressed inline button."""
    message = Message(
        message_id=update_id, date=datetime.now(timezone.utc),
        chat=Chat(id=CHAT_ID, type=Chat.PRIVATE), text="menu",
    )
    query = CallbackQuery(
        id=f"cb{update_id}", from_user=_user(), chat_instance="ci", data=data,
        message=message,
    )
    return Update(update_id=update_id, callback_query=query).to_dict()


def post_update(base: str, update: dict[str, Any]) -> httpx.Response:
    """Deliver an update as Telegram does."""
    return httpx.post(
        f"{base}/telegram/webhook", json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}, timeout=10,
    )


def test_telegram_conversation(telegram_gateway: tuple[str, FakeTelegramApi]) -> None:
    base, api = telegram_gateway
    assert post_update(base, text_update(1, "halo")).status_code == 200
    greeting = wait_for(lambda: api.calls_to("sendMessage"), "the greeting")[0]
    assert str(greeting["chat_id"]) == str(CHAT_ID)
    assert "Prakerja" in greeting["text"]
    markup = greeting["reply_markup"]
    keyboard = (json.loads(markup) if isinstance(markup, str) else markup)[
        "inline_keyboard"
    ]
    first_button = keyboard[0][0]

    # Telegram retries the same update: no second reply.
    assert post_update(base, text_update(1, "halo")).status_code == 200
    # A wrong secret is refused and stored nowhere.
    refused = httpx.post(
        f"{base}/telegram/webhook", json=text_update(2, "halo"),
        headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}, timeout=10,
    )
    assert refused.status_code in (401, 403)

    # Pressing the first button (eligibility check) starts the form.
    post_update(base, callback_update(3, first_button["callback_data"]))
    wait_for(lambda: api.calls_to("answerCallbackQuery"), "the callback answer")
    asked = wait_for(
        lambda: [c for c in api.calls_to("sendMessage") if "lahir" in c["text"]],
        "the first eligibility question",
    )
    assert len(asked) == 1
    time.sleep(1.5)
    greetings = [c for c in api.calls_to("sendMessage") if "Halo" in c["text"]]
    assert len(greetings) == 1


def signed_post(
    base: str, api: FakeTwilioApi, path: str, params: dict[str, str]
) -> httpx.Response:
    """POST form params signed the way Twilio signs them."""
    url = base + path
    signature = RequestValidator(api.auth_token).compute_signature(url, params)
    return httpx.post(
        url, content=urllib.parse.urlencode(params),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
        timeout=10,
    )


def sms(sid: str, body: str) -> dict[str, str]:
    """Twilio's inbound SMS parameters."""
    return {
        "MessageSid": sid, "SmsSid": sid, "AccountSid": "AC" + "0" * 32,
        "From": PHONE, "To": "+15005550006", "Body": body, "NumMedia": "0",
    }


def texts_to(api: FakeTwilioApi) -> list[str]:
    """Bodies of the SMS sent to the test phone, in order."""
    return [c.params["Body"] for c in api.sent if c.params.get("To") == PHONE]


def test_sms_conversation(sms_gateway: tuple[str, FakeTwilioApi]) -> None:
    base, api = sms_gateway
    assert signed_post(base, api, "/sms/inbound", sms("SM1", "halo")).status_code == 200
    greeting = wait_for(lambda: texts_to(api), "the greeting")[0]
    assert "1." in greeting and "Prakerja" in greeting
    assert all(ord(ch) < 128 for ch in greeting)

    # Redelivery of the same MessageSid: no second reply.
    signed_post(base, api, "/sms/inbound", sms("SM1", "halo"))
    # A bad signature is refused.
    forged = httpx.post(
        base + "/sms/inbound", data=sms("SM2", "halo"),
        headers={"X-Twilio-Signature": "forged"}, timeout=10,
    )
    assert forged.status_code == 403

    # "1" picks the first menu entry: the eligibility check.
    signed_post(base, api, "/sms/inbound", sms("SM3", "1"))
    wait_for(lambda: any("lahir" in t for t in texts_to(api)), "the first question")
    assert len([t for t in texts_to(api) if "Halo" in t]) == 1

    # STOP opts out: one confirmation, then silence until MULAI.
    signed_post(base, api, "/sms/inbound", sms("SM4", "STOP"))
    wait_for(lambda: any("MULAI" in t for t in texts_to(api)), "the opt-out reply")
    sent_before = len(texts_to(api))
    signed_post(base, api, "/sms/inbound", sms("SM5", "halo"))
    time.sleep(3)
    assert len(texts_to(api)) == sent_before
