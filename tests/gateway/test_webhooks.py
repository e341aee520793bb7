"""Provider webhooks through the app: authentication, storage, answers."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from bot.channels.base import SMS, TELEGRAM, SendResult
from bot.gateway import runtime as gateway_runtime
from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import (
    Db,
    FakeSender,
    post_telegram,
    post_twilio,
    running,
    sms_params,
    telegram_callback,
    telegram_update,
    wait_until,
)


def test_telegram_webhook_refuses_a_wrong_or_missing_secret(
    settings: Settings, db: Db
) -> None:
    with running(settings, senders={}) as client:
        wrong = post_telegram(client, telegram_update(1, 4242, "halo"), secret="nope")
        missing = client.post("/telegram/webhook", json=telegram_update(2, 4242, "x"))
    assert wrong.status_code == 403
    assert missing.status_code == 403
    assert db.inbox() == []


def test_telegram_webhook_rejects_a_body_that_is_not_an_update(
    settings: Settings, db: Db
) -> None:
    with running(settings, senders={}) as client:
        response = post_telegram(client, {"hello": "world"})
    assert response.status_code == 400
    assert db.inbox() == []


def test_telegram_button_press_is_answered_and_reaches_rasa(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.replies["halo"] = [
        {"text": "Mau cek syarat?", "buttons": [{"title": "Ya", "payload": "/affirm"}]}
    ]
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(10, 4242, "halo"))
        wait_until(lambda: telegram.sent, what="the question")
        data = telegram.sent[0].body["buttons"][0][0]["callback_data"]
        post_telegram(client, telegram_callback(11, 4242, data))
        wait_until(lambda: len(telegram.sent) >= 3, what="the callback answer")
    assert rasa.messages() == ["halo", "/affirm"]
    kinds = [sent.body["kind"] for sent in telegram.sent]
    assert kinds == ["message", "answer_callback", "message"]
    assert telegram.sent[1].body["callback_query_id"] == "cq11"


def test_sms_with_a_bad_signature_is_refused_and_not_stored(
    settings: Settings, db: Db
) -> None:
    params = sms_params("SM" + "1" * 32, "+6281234567890", "halo")
    with running(settings, senders={}) as client:
        forged = post_twilio(client, "/sms/inbound", params, token="wrong-token")
        unsigned = client.post("/sms/inbound", data=params)
        valid = post_twilio(client, "/sms/inbound", params)
    assert forged.status_code == 403
    assert unsigned.status_code == 403
    assert valid.status_code == 200
    assert len(db.inbox()) == 1


def test_sms_inbound_is_stored_once_and_answered_with_empty_twiml(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    sms = FakeSender(SMS)
    params = sms_params("SM" + "2" * 32, "+6281234567890", "halo")
    with running(settings, senders={SMS: sms}) as client:
        first = post_twilio(client, "/sms/inbound", params)
        again = post_twilio(client, "/sms/inbound", params)
        wait_until(lambda: sms.sent, what="the SMS reply")
    for response in (first, again):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        assert response.text.endswith("<Response/>")
    assert len(db.inbox()) == 1
    assert rasa.messages() == ["halo"]
    assert [s.address for s in sms.sent] == ["+6281234567890"]
    assert sms.sent[0].body == {"kind": "sms", "text": "Anda menulis: halo"}


def test_sms_status_callback_is_recorded(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    sms = FakeSender(SMS)
    sms.script = [SendResult(ok=True, provider_message_id="SM" + "a" * 32)]
    with running(settings, senders={SMS: sms}) as client:
        post_twilio(
            client, "/sms/inbound", sms_params("SM" + "3" * 32, "+628111", "halo")
        )
        wait_until(lambda: [r for r in db.outbox() if r.status == "sent"])
        sid = "SM" + "a" * 32
        status = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": "AC"}
        forged = post_twilio(client, "/sms/status", status, token="wrong")
        assert forged.status_code == 403
        assert db.outbox()[0].status == "sent"
        assert post_twilio(client, "/sms/status", status).status_code == 200
        assert post_twilio(client, "/sms/status", status).status_code == 200
        late = {**status, "MessageStatus": "sent"}
        assert post_twilio(client, "/sms/status", late).status_code == 200
        unknown = {**status, "MessageSid": "SM" + "f" * 32}
        assert post_twilio(client, "/sms/status", unknown).status_code == 200
    [row] = db.outbox()
    assert row.provider_message_id == sid
    assert row.status == "delivered"
    assert row.delivery_status == "delivered"


def test_sms_undelivered_status_keeps_the_error_code(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    sms = FakeSender(SMS)
    sid = "SM" + "b" * 32
    sms.script = [SendResult(ok=True, provider_message_id=sid)]
    with running(settings, senders={SMS: sms}) as client:
        post_twilio(
            client, "/sms/inbound", sms_params("SM" + "4" * 32, "+628111", "halo")
        )
        wait_until(lambda: [r for r in db.outbox() if r.status == "sent"])
        params = {
            "MessageSid": sid,
            "MessageStatus": "undelivered",
            "ErrorCode": "30003",
        }
        assert post_twilio(client, "/sms/status", params).status_code == 200
    [row] = db.outbox()
    assert (row.status, row.delivery_status, row.error_code) == (
        "undelivered",
        "undelivered",
        "30003",
    )


def test_healthz_reports_the_database(settings: Settings) -> None:
    with running(settings, senders={}) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "loops": "running",
        "wakeups": "in-process",
        "unknown_sends": {"unknown": 0, "found": 0, "resent": 0, "given_up": 0},
        "failed_messages": 0,
        "incomplete_turns": 0,
        "backlog": {
            "pending": 0,
            "conversations": 0,
            "oldest_age_seconds": None,
            "rate_per_second": None,
            "expected_wait_seconds": 0.0,
            "over_capacity": False,
            "notices": 0,
            "overflow_notices": 0,
            "skipped": 0,
            "refused": 0,
        },
    }


def test_a_database_error_is_a_503_logged_without_its_message(
    settings: Settings,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    detail = "Key (channel, address)=(telegram, 4242) already exists"

    def broken_store(session: Any, message: Any, **options: Any) -> bool:
        raise IntegrityError("INSERT INTO conversation", {}, Exception(detail))

    monkeypatch.setattr(gateway_runtime, "store_inbound", broken_store)
    with running(settings, senders={}) as client:
        response = post_telegram(client, telegram_update(1, 4242, "halo"))
    assert response.status_code == 503  # Telegram delivers it again later
    assert "database error: IntegrityError" in caplog.text
    assert "4242" not in caplog.text
