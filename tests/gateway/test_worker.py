"""The conversation worker: order, Rasa outages, restarts, "/" and opt-out."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from bot.channels import simulator
from bot.channels.base import SMS, TELEGRAM, InboundMessage, Interpretation, SendResult
from bot.channels.sms import is_gsm7
from bot.channels.telegram import TelegramChannel
from bot.db import utcnow
from bot.gateway.results import Results
from bot.gateway.turn import APOLOGY
from bot.messages.inbox import store_inbound
from bot.messages.models import Conversation
from bot.privacy.vault import TOKEN_PATTERN, Vault
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
    telegram_callback,
    telegram_update,
    wait_until,
)
from tests.gateway.fake_actions import FakeActionServer

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
        wait_until(lambda: db.inbox()[0].last_error, what="a failed Rasa call")
        time.sleep(1.0)  # several retries
        first, second = db.inbox()
        assert (first.status, second.status) == ("pending", "pending")
        assert second.last_error is None, "a later message overtook the first one"
        assert (first.attempts, second.attempts) == (0, 0), "waits are no attempts"
        assert db.outbox() == []
        rasa.up()
        wait_until(lambda: len(telegram.sent) == 2, what="both replies")
        wait_until(lambda: all(r.status == "done" for r in db.inbox()))
    assert rasa.messages() == ["halo", "masih di sana?"]
    assert telegram.texts() == ["Anda menulis: halo", "Anda menulis: masih di sana?"]
    assert len(db.outbox()) == 2


def test_conversations_go_on_as_soon_as_rasa_is_back_not_after_their_backoff(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    patient = replace(FAST, rasa_backoff_base=60.0, rasa_backoff_cap=60.0)
    rasa.down()
    with running(settings, patient, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(310, 4242, "halo"))
        wait_until(lambda: db.inbox()[0].last_error, what="a failed Rasa call")
        assert db.conversations()[0].not_before is not None, "it waits 60 s"
        rasa.up()
        # the probe sees Rasa back within a second: far before the 60 s backoff
        wait_until(lambda: telegram.sent, timeout=15.0, what="the answer")
    assert telegram.texts() == ["Anda menulis: halo"]


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
        wait_until(lambda: db.inbox()[-1].last_error, what="a failed Rasa call")
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
        data = db.outbox()[0].body["buttons"][0][0]["callback_data"]
        _simulate(client, TELEGRAM, "andi", payload=data)
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
    error = str(db.inbox()[0].last_error)
    assert error.startswith("RuntimeError at ")
    assert "channel bug" not in error, "an exception's message may quote the text"
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


# --- the action server, failing turns, attempts ---------------------------------


def test_action_server_down_keeps_the_message_until_it_is_back(
    settings: Settings, rasa: FakeRasa, actions: FakeActionServer, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    actions.down()
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(500, 4242, "halo"))
        wait_until(lambda: db.inbox()[0].last_error, what="a failed health check")
        time.sleep(0.5)  # several checks
        [row] = db.inbox()
        assert (row.status, row.attempts) == ("pending", 0)
        assert "action server" in str(row.last_error)
        assert rasa.received == [], "Rasa would answer 200 with nothing"
        actions.up()
        wait_until(lambda: telegram.sent, what="the reply")
        wait_until(lambda: db.inbox()[0].status == "done")
    assert rasa.messages() == ["halo"]
    assert telegram.texts() == ["Anda menulis: halo"]


def test_action_server_failing_while_running_is_noticed_after_the_cache(
    settings: Settings, rasa: FakeRasa, actions: FakeActionServer, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(510, 4242, "satu"))
        wait_until(lambda: telegram.sent, what="the first reply")
        actions.fail_with(503)
        time.sleep(FAST.actions_health_ttl + 0.1)  # the last success expires
        checks = actions.checks
        post_telegram(client, telegram_update(511, 4242, "dua"))
        wait_until(lambda: actions.checks >= checks + 2, what="failed checks")
        assert db.inbox()[-1].status == "pending"
        actions.fail_with(None)
        wait_until(lambda: len(telegram.sent) == 2, what="the second reply")
        wait_until(lambda: all(r.status == "done" for r in db.inbox()))
    assert rasa.messages() == ["satu", "dua"]


def test_a_turn_that_always_fails_is_given_up_with_an_apology(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    sms = FakeSender(SMS)
    number = "+6281234567890"
    rasa.fail_with(500)
    with running(settings, senders={SMS: sms}) as client:
        post_twilio(client, "/sms/inbound", sms_params("SM" + "5" * 32, number, "halo"))
        wait_until(lambda: db.inbox()[0].status == "failed", what="giving up")
        assert rasa.refused == FAST.max_turn_attempts
        wait_until(lambda: sms.sent, what="the apology")
        rasa.fail_with(None)
        post_twilio(client, "/sms/inbound", sms_params("SM" + "6" * 32, number, "lagi"))
        wait_until(lambda: len(sms.sent) == 2, what="the next reply")
    failed, done = db.inbox()
    assert (failed.attempts, failed.last_error) == (3, "RasaTurnError: HTTP 500")
    assert done.status == "done"
    apology, reply = sms.texts()
    assert apology == APOLOGY and is_gsm7(apology)
    assert reply == "Anda menulis: lagi"
    assert rasa.messages() == ["lagi"]


def test_a_turn_that_always_times_out_does_not_block_the_conversation(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.delays["lambat"] = 1.0
    telegram = FakeSender(TELEGRAM)
    options = replace(FAST, rasa_timeout=0.3, max_turn_attempts=2)
    with running(settings, options, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(520, 4242, "lambat"))
        post_telegram(client, telegram_update(521, 4242, "cepat"))
        wait_until(lambda: len(telegram.sent) == 2, what="apology and reply")
        wait_until(lambda: [r.status for r in db.inbox()] == ["failed", "done"])
    assert telegram.texts() == [APOLOGY, "Anda menulis: cepat"]
    assert db.inbox()[0].last_error == "RasaTurnError: TimeoutError"


def test_waiting_for_rasa_does_not_use_up_the_attempts(
    settings: Settings,
    rasa: FakeRasa,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    telegram = FakeSender(TELEGRAM)
    real_complete = Results.complete
    failures: list[int] = []

    def complete_failing_once(
        self: Any, session: Any, pending: Any, outcome: Any, **options: Any
    ) -> bool:
        if not failures:
            failures.append(pending.inbox_id)
            raise OperationalError("UPDATE inbox_message", {}, Exception("locked"))
        return real_complete(self, session, pending, outcome, **options)

    monkeypatch.setattr(Results, "complete", complete_failing_once)
    rasa.down()
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(530, 4242, "halo"))
        wait_until(lambda: db.inbox()[0].last_error, what="a failed Rasa call")
        time.sleep(1.5)  # more waits than the error limit allows attempts
        rasa.up()
        wait_until(lambda: telegram.sent, what="the reply")
        wait_until(lambda: db.inbox()[0].status != "pending")
    [row] = db.inbox()
    assert failures == [row.id]
    assert (row.status, row.attempts) == ("done", 2)
    assert telegram.texts() == ["Anda menulis: halo"]


def test_database_errors_leave_no_text_or_parameters_in_last_error(
    settings: Settings,
    rasa: FakeRasa,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "NIK 3171234567890123"

    def complete_failing(self: Any, session: Any, *args: Any, **options: Any) -> bool:
        raise OperationalError(
            f"UPDATE x SET text='{secret}'", {"text": secret}, Exception(secret)
        )

    monkeypatch.setattr(Results, "complete", complete_failing)
    with running(settings) as client:
        _simulate(client, TELEGRAM, "andi", text=secret)
        wait_until(lambda: db.inbox()[0].status == "failed", what="giving up")
    error = str(db.inbox()[0].last_error)
    assert error.startswith("OperationalError at ")
    assert "3171" not in error


def test_a_button_press_is_answered_at_once_even_while_rasa_is_down(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.replies["halo"] = [
        {"text": "Lanjut?", "buttons": [{"title": "Ya", "payload": "/affirm"}]}
    ]
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(540, 4242, "halo"))
        wait_until(lambda: telegram.sent, what="the question")
        data = telegram.sent[0].body["buttons"][0][0]["callback_data"]
        rasa.down()
        post_telegram(client, telegram_callback(541, 4242, data))
        wait_until(lambda: len(telegram.sent) == 2, what="the callback answer")
        assert telegram.sent[1].body["kind"] == "answer_callback"
        wait_until(lambda: db.inbox()[-1].last_error, what="a failed Rasa call")
        time.sleep(0.5)  # retries store the answer only once
        assert db.inbox()[-1].status == "pending"
        assert len(db.outbox()) == 2
        post_telegram(client, telegram_callback(542, 4242, data))  # a second tap
        rasa.up()
        wait_until(lambda: len(telegram.sent) == 4, what="reply and stale answer")
        wait_until(lambda: all(r.status == "done" for r in db.inbox()))
    assert rasa.messages() == ["halo", "/affirm"]
    kinds = [(s.body["kind"], s.body.get("text")) for s in telegram.sent]
    assert kinds == [
        ("message", "Lanjut?"),
        ("answer_callback", None),
        ("message", "Anda menulis: /affirm"),
        ("answer_callback", "Pilihan ini sudah tidak berlaku."),
    ]


PERSONAL = (
    "nik saya 3174  0115  0890  0001, kk 3174-0101-0115-0001,\n"
    "lahir 15 agustus 1990, email Budi.Santoso@gmail.com, hp (0812) 3456-7890"
)
CLEAR = (
    "3174011508900001",
    "3174010101150001",
    "1990",
    "agustus",
    "budi",
    "santoso",
    "34567890",
)


def test_rasa_gets_tokens_for_personal_data_and_the_vault_the_values(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    """Rasa's tracker store keeps what Rasa is handed: tokens only; revealing
    them in the conversation gives back exactly what the person typed."""
    telegram = FakeSender(TELEGRAM)
    contact = telegram_update(401, 4242, "x")
    contact["message"].pop("text")
    contact["message"]["contact"] = {
        "phone_number": "6281234567890",
        "first_name": "Andi",
        "user_id": 4242,
    }
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(400, 4242, PERSONAL))
        post_telegram(client, contact)
        wait_until(lambda: len(telegram.sent) == 2, what="two replies")
    [pseudonym] = rasa.senders()
    typed, shared = rasa.received
    for seen in (typed, shared):
        handed = (seen.message + repr(seen.metadata)).lower()
        # What is left once the tokens are taken out (a token's random digits
        # may contain "1990" by chance: once in about a hundred runs they did).
        untokened = TOKEN_PATTERN.sub(" ", seen.message + repr(seen.metadata))
        flat = "".join(ch for ch in untokened.lower() if ch.isalnum())
        for clear in (*CLEAR, "81234567890"):
            assert clear not in flat, (clear, handed)
    assert len(TOKEN_PATTERN.findall(typed.message)) == 5
    assert "contact_phone" in shared.message and TOKEN_PATTERN.search(shared.message)
    vault = Vault(db.sessions)
    assert vault.reveal(pseudonym, typed.message) == PERSONAL
    assert vault.reveal(pseudonym, shared.message).endswith('"+6281234567890"}')
    assert vault.reveal("someone-else", typed.message) == typed.message
