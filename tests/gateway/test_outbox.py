"""The outbox: retries with backoff and retry_after, failures, order, statuses."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.channels.base import SMS, TELEGRAM, SendResult
from bot.db import utcnow
from bot.gateway.statuses import record_status
from bot.messages.inbox import conversation_id
from bot.messages.models import EarlyDeliveryStatus, OutboxMessage
from bot.schema import upgrade
from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import (
    FAST,
    PSEUDONYM_KEY,
    Db,
    FakeSender,
    post_telegram,
    post_twilio,
    running,
    sms_params,
    telegram_update,
    wait_until,
)


def test_retry_after_and_backoff_are_honoured(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    telegram.script = [
        SendResult(ok=False, retry_after=0.8, error="Too Many Requests"),
        SendResult(ok=False, error="Timed out"),
        SendResult(ok=True, provider_message_id="tg-77"),
    ]
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(1, 4242, "halo"))
        wait_until(lambda: db.outbox() and db.outbox()[0].status == "sent")
    first, second, third = (sent.at for sent in telegram.sent)
    assert second - first >= 0.8, "sent again before retry_after"
    assert third - second >= FAST.send_backoff_base * 0.75
    [row] = db.outbox()  # the retry_after was no failed attempt
    assert (row.attempts, row.provider_message_id) == (2, "tg-77")
    assert row.sent_at is not None and row.lease_owner is None


def test_a_permanent_failure_is_not_retried(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    telegram.script = [SendResult(ok=False, permanent=True, error="bot was blocked")]
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(1, 4242, "halo"))
        wait_until(lambda: db.outbox() and db.outbox()[0].status == "failed")
    [row] = db.outbox()
    assert (row.attempts, row.last_error) == (1, "bot was blocked")
    assert len(telegram.sent) == 1


def test_transient_failures_give_up_after_max_attempts(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    telegram.fallback = SendResult(ok=False, error="HTTP 502")
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(1, 4242, "halo"))
        wait_until(lambda: db.outbox() and db.outbox()[0].status == "failed")
    assert db.outbox()[0].attempts == FAST.max_send_attempts
    assert len(telegram.sent) == FAST.max_send_attempts


def test_a_later_reply_waits_for_the_earlier_one(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.replies["halo"] = [{"text": "satu"}, {"text": "dua"}, {"text": "tiga"}]
    telegram = FakeSender(TELEGRAM)
    telegram.script = [
        SendResult(ok=False, error="flaky"),
        SendResult(ok=False, retry_after=0.3),
    ]
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(1, 4242, "halo"))
        wait_until(lambda: [r.status for r in db.outbox()] == ["sent"] * 3)
    assert telegram.texts() == ["satu", "satu", "satu", "dua", "tiga"]
    assert [row.seq for row in db.outbox()] == [0, 1, 2]


def test_record_status_is_idempotent_and_never_goes_back(
    settings: Settings, db: Db
) -> None:
    upgrade(settings.database_url)
    with db.sessions() as session:
        conversation = conversation_id(session, TELEGRAM, "4242", PSEUDONYM_KEY)
        session.add(
            OutboxMessage(
                conversation_id=conversation,
                seq=0,
                body={"kind": "sms", "text": "x"},
                status="sent",
                provider_message_id="SM1",
                sent_at=utcnow(),
            )
        )
        session.commit()
    for status, expected in [
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("delivered", "delivered"),
        ("sent", "delivered"),
    ]:
        with db.sessions() as session:
            assert record_status(session, "SM1", status)
            session.commit()
        assert db.outbox()[0].status == expected
    with db.sessions() as session:
        assert not record_status(session, "SM-unknown", "delivered")


class SlowSender(FakeSender):
    """A FakeSender whose sends take `delay` seconds (a paced or slow provider)."""

    def __init__(self, channel: str, delay: float) -> None:
        super().__init__(channel)
        self.delay = delay

    async def send(self, address: str, body: dict[str, Any]) -> SendResult:
        """Record the body, then take `delay` seconds to answer."""
        result = await super().send(address, body)
        await asyncio.sleep(self.delay)
        return result


def test_a_telegram_backlog_does_not_hold_up_sms_replies(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = SlowSender(TELEGRAM, delay=1.5)
    sms = FakeSender(SMS)
    options = replace(FAST, outbox_concurrency=2)
    with running(settings, options, senders={TELEGRAM: telegram, SMS: sms}) as client:
        for chat in range(6):
            post_telegram(client, telegram_update(100 + chat, 4200 + chat, "halo"))
        wait_until(lambda: len(telegram.sent) == 2, what="Telegram sends in flight")
        started = time.monotonic()
        post_twilio(
            client, "/sms/inbound", sms_params("SM" + "7" * 32, "+628123", "halo")
        )
        wait_until(lambda: sms.sent, what="the SMS reply")
        assert sms.sent[0].at - started < 1.0, "the SMS waited for Telegram"
        assert len(telegram.sent) == 2, "only two Telegram sends at a time"


def test_a_status_that_comes_before_the_sid_is_stored_is_applied_later(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    sms = SlowSender(SMS, delay=2.5)  # longer than the route looks for the row
    with running(settings, senders={SMS: sms}) as client:
        post_twilio(
            client, "/sms/inbound", sms_params("SM" + "8" * 32, "+628123", "halo")
        )
        wait_until(lambda: sms.sent, what="the send to start")
        status = {"MessageSid": "sms-1", "MessageStatus": "delivered"}
        assert post_twilio(client, "/sms/status", status).status_code == 200
        assert db.outbox()[0].status == "pending", "the send was still going on"
        wait_until(lambda: db.outbox()[0].status == "delivered", what="the status")
    [row] = db.outbox()
    assert (row.provider_message_id, row.delivery_status) == ("sms-1", "delivered")


def test_a_status_racing_the_sender_is_applied_once_the_sid_is_stored(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    sms = SlowSender(SMS, delay=0.5)
    with running(settings, senders={SMS: sms}) as client:
        post_twilio(
            client, "/sms/inbound", sms_params("SM" + "9" * 32, "+628123", "halo")
        )
        wait_until(lambda: sms.sent, what="the send to start")
        for status in ("sent", "delivered", "sent"):  # a late "sent" changes nothing
            callback = {"MessageSid": "sms-1", "MessageStatus": status}
            assert post_twilio(client, "/sms/status", callback).status_code == 200
        wait_until(lambda: db.outbox()[0].status == "delivered", what="the status")
    assert db.all(EarlyDeliveryStatus) == [], "kept statuses are forgotten once applied"


def test_kept_statuses_of_unknown_messages_expire(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    with running(settings, senders={}) as client:
        old = {"MessageSid": "SM-never-ours", "MessageStatus": "delivered"}
        assert post_twilio(client, "/sms/status", old).status_code == 200
        with db.sessions() as session:
            [kept] = session.query(EarlyDeliveryStatus).all()
            kept.received_at = utcnow() - timedelta(days=8)
            session.commit()
        new = {"MessageSid": "SM-later", "MessageStatus": "sent"}
        assert post_twilio(client, "/sms/status", new).status_code == 200
    assert [row.provider_message_id for row in db.all(EarlyDeliveryStatus)] == [
        "SM-later"
    ]


def test_rate_limit_waits_are_no_failed_attempts(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    paced = SendResult(ok=False, retry_after=0.01, error="paced by the rate limiter")
    telegram.script = [paced] * (FAST.max_send_attempts + 2) + [
        SendResult(ok=False, error="Timed out")
    ]
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(1, 4242, "halo"))
        wait_until(lambda: db.outbox() and db.outbox()[0].status != "pending")
    [row] = db.outbox()
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(telegram.sent) == FAST.max_send_attempts + 4
