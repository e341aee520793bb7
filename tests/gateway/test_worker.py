"""The conversation worker: order, Rasa outages, restarts, "/" and opt-out."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from bot.channels import simulator
from bot.channels.base import SMS, TELEGRAM, InboundMessage, Interpretation, SendResult
from bot.channels.telegram import TelegramChannel
from bot.db import utcnow
from bot.gateway.inbox import store_inbound
from bot.gateway.models import Conversation
from bot.gateway.store import upgrade
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

PATIENT = replace(FAST, max_send_attempts=1000)  # failing sends stay pending


def _simulate(client: object, channel: str, user: str, **body: str) -> None:
    response = client.post(  # type: ignore[attr-defined]
        "/simulator/api/send", json={"channel": channel, "user": user, **body}
    )
    assert response.status_code == 200, response.text


def test_messages_are_answered_in_arrival_order_even_when_rasa_is_slow(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.delays = {"satu": 0.6, "dua": 0.3, "tiga": 0.0}
    words = ["satu", "dua", "tiga", "empat", "lima"]
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        for number, word in enumerate(words):
            post_telegram(client, telegram_update(100 + number, 4242, word))
            post_telegram(client, telegram_update(200 + number, 5353, word))
        wait_until(lambda: len(telegram.sent) == 10, what="ten replies")
    for chat in ("4242", "5353"):
        texts = [str(s.body["text"]) for s in telegram.sent if s.address == chat]
        assert texts == [f"Anda menulis: {word}" for word in words]
    for sender in rasa.senders():
        assert rasa.messages(sender) == words
    # the two conversations were handled side by side, not one after the other
    first_reply = {s.address: s.at for s in reversed(telegram.sent)}
    assert abs(first_reply["4242"] - first_reply["5353"]) < 0.5


def test_rasa_down_then_up_answers_once_when_it_is_back(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    rasa.down()
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(300, 4242, "halo"))
        post_telegram(client, telegram_update(301, 4242, "masih di sana?"))
        wait_until(lambda: db.inbox()[0].attempts >= 3, what="retries")
        first, second = db.inbox()
        assert (first.status, second.status) == ("pending", "pending")
        assert second.attempts == 0, "a later message overtook the first one"
        assert first.last_error
        assert db.outbox() == []
        rasa.up()
        wait_until(lambda: len(telegram.sent) == 2, what="both replies")
        wait_until(lambda: all(r.status == "done" for r in db.inbox()))
    assert rasa.messages() == ["halo", "masih di sana?"]
    assert telegram.texts() == ["Anda menulis: halo", "Anda menulis: masih di sana?"]
    assert len(db.outbox()) == 2


def test_rasa_answering_503_is_retried_until_it_recovers(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.fail_with(503)
    with running(settings) as client:
        _simulate(client, TELEGRAM, "andi", text="halo")
        wait_until(lambda: rasa.refused >= 2, what="refused attempts")
        assert db.inbox()[0].status == "pending"
        rasa.fail_with(None)
        wait_until(
            lambda: [row.status for row in db.outbox()] == ["delivered"],
            what="the reply",
        )
    assert rasa.messages() == ["halo"]


def test_a_new_gateway_resumes_pending_inbox_and_outbox_rows(
    tmp_path: Path, settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    broken = FakeSender(TELEGRAM)
    broken.fallback = SendResult(ok=False, error="network down")
    with running(settings, PATIENT, senders={TELEGRAM: broken}) as client:
        post_telegram(client, telegram_update(400, 4242, "halo"))
        wait_until(lambda: len(broken.sent) >= 2, what="failing sends")
        rasa.down()
        post_telegram(client, telegram_update(401, 4242, "lagi"))
        wait_until(lambda: db.inbox()[-1].attempts >= 1, what="a failed Rasa call")
    inbox, outbox = db.inbox(), db.outbox()
    assert [row.status for row in inbox] == ["done", "pending"]
    assert [row.status for row in outbox] == ["pending"]
    assert all(c.lease_owner is None for c in db.conversations())
    assert all(row.lease_owner is None for row in outbox)

    rasa.up()
    working = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: working}):
        wait_until(lambda: len(working.sent) == 2, what="both replies after restart")
        wait_until(lambda: all(r.status == "sent" for r in db.outbox()))
    assert working.texts() == ["Anda menulis: halo", "Anda menulis: lagi"]
    assert rasa.messages() == ["halo", "lagi"]
    assert [row.status for row in db.inbox()] == ["done", "done"]


def test_a_typed_command_is_neutralised_but_our_button_payload_is_not(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.replies["check_eligibility"] = [
        {
            "text": "Mau cek kelayakan?",
            "buttons": [{"title": "Cek", "payload": "/check_eligibility"}],
        }
    ]
    with running(settings) as client:
        _simulate(client, TELEGRAM, "andi", text="/check_eligibility")
        wait_until(lambda: db.outbox(), what="the reply with a button")
        _simulate(client, TELEGRAM, "andi", payload="/check_eligibility")
        _simulate(client, TELEGRAM, "andi", text='/inform{"nik": "1"}')
        wait_until(lambda: len(rasa.received) == 3, what="three turns")
    assert rasa.messages() == [
        "check_eligibility",
        "/check_eligibility",
        'inform{"nik": "1"}',
    ]


def test_stop_opts_out_and_pending_replies_are_not_sent(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    sms = FakeSender(SMS)
    sms.fallback = SendResult(ok=False, error="provider down")
    number = "+6281234567890"
    with running(settings, PATIENT, senders={SMS: sms}) as client:
        post_twilio(client, "/sms/inbound", sms_params("SM" + "1" * 32, number, "halo"))
        wait_until(lambda: sms.sent, what="a failing send")
        post_twilio(client, "/sms/inbound", sms_params("SM" + "2" * 32, number, "STOP"))
        wait_until(
            lambda: db.outbox()[0].status == "failed", what="the reply to be dropped"
        )
        before = len(sms.sent)
        sms.fallback = None
        wait_until(lambda: db.outbox()[-1].status == "sent", what="the confirmation")
        post_twilio(client, "/sms/inbound", sms_params("SM" + "3" * 32, number, "halo"))
        wait_until(lambda: all(r.status == "done" for r in db.inbox()))
    reply, confirmation = db.outbox()
    assert (reply.status, reply.last_error) == ("failed", "opted out")
    assert confirmation.ignore_opt_out
    assert "MULAI" in str(confirmation.body["text"])
    assert [s.body for s in sms.sent[before:]] == [confirmation.body]
    assert db.conversations()[0].opted_out
    assert rasa.messages() == ["halo"]


class _BrokenOnBoom(TelegramChannel):
    """The real Telegram channel, except that "boom" makes it raise."""

    def interpret(
        self, message: InboundMessage, state: dict[str, Any], opted_out: bool
    ) -> Interpretation:
        if message.text == "boom":
            raise RuntimeError("channel bug")
        return super().interpret(message, state, opted_out)


def test_a_message_the_channel_cannot_handle_does_not_block_the_next(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    with running(settings, channels={TELEGRAM: _BrokenOnBoom()}) as client:
        _simulate(client, TELEGRAM, "andi", text="boom")
        _simulate(client, TELEGRAM, "andi", text="halo")
        wait_until(lambda: [r.status for r in db.inbox()] == ["failed", "done"])
    assert "channel bug" in str(db.inbox()[0].last_error)
    assert rasa.messages() == ["halo"]


def test_a_conversation_leased_by_another_process_waits_for_its_lease(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    upgrade(settings.database_url)
    with db.sessions() as session:
        message = simulator.inbound(TELEGRAM, "andi", text="halo")
        store_inbound(session, message, PSEUDONYM_KEY)
        session.execute(
            update(Conversation).values(
                lease_owner="other-process",
                lease_until=utcnow() + timedelta(seconds=60),
            )
        )
        session.commit()
    with running(settings):
        time.sleep(0.5)
        assert rasa.received == []
        assert db.inbox()[0].status == "pending"
        with db.sessions() as session:  # the other process died: its lease expires
            session.execute(
                update(Conversation).values(lease_until=utcnow() - timedelta(seconds=1))
            )
            session.commit()
        wait_until(lambda: db.inbox()[0].status == "done", what="the takeover")
    assert rasa.messages() == ["halo"]
    assert db.conversations()[0].lease_owner is None
