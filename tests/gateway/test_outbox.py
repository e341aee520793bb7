"""The outbox: retries with backoff and retry_after, failures, order, statuses."""

from __future__ import annotations

from bot.channels.base import TELEGRAM, SendResult
from bot.db import utcnow
from bot.gateway.inbox import conversation_id
from bot.gateway.models import OutboxMessage
from bot.gateway.outbox import record_status
from bot.gateway.store import upgrade
from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import (
    FAST,
    PSEUDONYM_KEY,
    Db,
    FakeSender,
    post_telegram,
    running,
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
    [row] = db.outbox()
    assert (row.attempts, row.provider_message_id) == (3, "tg-77")
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
