"""The gateway with the real provider clients, against local fakes of their APIs.

python-telegram-bot talks to a fake Bot API server and twilio's client to a fake
REST endpoint, so these tests cover the whole path from webhook to provider call.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.fakes.telegram_api import FakeTelegramApi
from tests.fakes.twilio_api import FakeTwilioApi
from tests.gateway.conftest import (
    TWILIO_TOKEN,
    Db,
    make_settings,
    post_telegram,
    post_twilio,
    running,
    sms_params,
    telegram_update,
    wait_until,
)
from tests.gateway.fake_actions import FakeActionServer


@pytest.fixture
def telegram_api() -> Iterator[FakeTelegramApi]:
    api = FakeTelegramApi().start()
    yield api
    api.stop()


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilioApi]:
    api = FakeTwilioApi(auth_token=TWILIO_TOKEN).start()
    yield api
    api.stop()


@pytest.fixture
def provider_settings(
    tmp_path: Path,
    rasa: FakeRasa,
    actions: FakeActionServer,
    telegram_api: FakeTelegramApi,
    twilio_api: FakeTwilioApi,
) -> Settings:
    return make_settings(
        tmp_path,
        rasa.url,
        actions_url=actions.url,
        TELEGRAM_TOKEN=telegram_api.token,
        TELEGRAM_API_URL=telegram_api.url,
        TWILIO_API_URL=twilio_api.url,
    )


def test_telegram_reply_goes_out_through_the_bot_api_after_a_rate_limit(
    provider_settings: Settings,
    rasa: FakeRasa,
    telegram_api: FakeTelegramApi,
) -> None:
    rasa.replies["halo"] = [
        {
            "text": "Halo! Mau cek syarat?",
            "buttons": [{"title": "Ya", "payload": "/affirm"}],
        }
    ]
    telegram_api.fail_next(1, method="sendMessage", error="retry_after", retry_after=1)
    db = Db(provider_settings.database_url)
    with running(provider_settings) as client:
        post_telegram(client, telegram_update(1, 4242, "halo"))
        wait_until(
            lambda: [r.status for r in db.outbox()] == ["sent"], what="the reply"
        )
    attempts = [c.status for c in telegram_api.calls if c.method == "sendMessage"]
    assert attempts == [429, 200]
    sends = telegram_api.calls_to("sendMessage")
    assert sends[-1]["chat_id"] in (4242, "4242")
    assert sends[-1]["text"] == "Halo! Mau cek syarat?"
    keyboard = sends[-1]["reply_markup"]["inline_keyboard"]
    assert keyboard == [[{"text": "Ya", "callback_data": "1:/affirm"}]]
    [row] = db.outbox()  # Telegram's retry_after is no failed attempt
    assert row.attempts == 1 and row.provider_message_id
    db.close()


def test_sms_reply_goes_out_through_twilio_and_its_status_is_recorded(
    provider_settings: Settings,
    rasa: FakeRasa,
    twilio_api: FakeTwilioApi,
) -> None:
    db = Db(provider_settings.database_url)
    with running(provider_settings) as client:
        post_twilio(
            client,
            "/sms/inbound",
            sms_params("SM" + "1" * 32, "+6281234567890", "halo"),
        )
        wait_until(lambda: twilio_api.sent, what="the SMS")
        wait_until(lambda: [r.status for r in db.outbox()] == ["sent"])
        [call] = twilio_api.sent
        assert call.params["To"] == "+6281234567890"
        assert call.params["Body"] == "Anda menulis: halo"
        assert call.params["StatusCallback"].endswith("/sms/status")
        status = {"MessageSid": str(call.sid), "MessageStatus": "delivered"}
        assert post_twilio(client, "/sms/status", status).status_code == 200
    [row] = db.outbox()
    assert (row.provider_message_id, row.status) == (call.sid, "delivered")
    db.close()
