"""Turns whose actions failed, and turns whose result could not be stored.

Rasa answers 200 even when an action of the turn failed (`bot.rasa_channel`
reports it). Such a turn is never marked done silently: its partial replies are
dropped and the whole turn is retried; at the attempt limit the person gets the
apology and the message is counted on /healthz and listed for supervisors. A
database error after the turn ends the same way.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bot.channels.base import SMS, TELEGRAM
from bot.channels.sms import is_gsm7
from bot.gateway.results import Results
from bot.gateway.turn import APOLOGY
from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import (
    FAST,
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

QUESTION = "apa itu prakerja"
NUMBER = "+6281234567890"


def test_an_incomplete_turn_sends_nothing_half_and_is_retried_whole(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.incomplete[QUESTION] = 1
    rasa.partial = [{"text": "Sebentar ya"}]
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(600, 4242, QUESTION))
        wait_until(lambda: telegram.sent, what="the answer")
        wait_until(lambda: db.inbox()[0].status == "done")
        health = client.get("/healthz").json()
    assert telegram.texts() == [f"Anda menulis: {QUESTION}"]
    assert rasa.messages() == [QUESTION, QUESTION]
    [row] = db.inbox()
    assert (row.status, row.attempts) == ("done", 2)
    assert health["incomplete_turns"] == 1
    assert health["failed_messages"] == 0


def test_a_turn_whose_actions_keep_failing_is_apologised_and_counted(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.incomplete[QUESTION] = 100
    rasa.partial = [{"text": "Sebentar ya"}]
    sms = FakeSender(SMS)
    with running(settings, senders={SMS: sms}) as client:
        params = sms_params("SM" + "7" * 32, NUMBER, QUESTION)
        post_twilio(client, "/sms/inbound", params)
        wait_until(lambda: db.inbox()[0].status == "failed", what="giving up")
        wait_until(lambda: sms.sent, what="the apology")
        health = client.get("/healthz").json()
    [row] = db.inbox()
    assert row.attempts == FAST.max_turn_attempts
    failed = "IncompleteTurnError: actions failed: action_registration_status"
    assert row.last_error == failed
    assert sms.texts() == [APOLOGY] and is_gsm7(APOLOGY)
    assert health["incomplete_turns"] == FAST.max_turn_attempts
    assert health["failed_messages"] == 1


def test_a_turn_cut_off_by_an_outage_waits_without_counting_an_attempt(
    settings: Settings, rasa: FakeRasa, actions: FakeActionServer, db: Db
) -> None:
    rasa.incomplete[QUESTION] = 1  # the action server goes down during the turn
    rasa.on_incomplete = lambda: actions.fail_with(503)
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(610, 4242, QUESTION))
        wait_until(
            lambda: "action server" in (db.inbox()[0].last_error or ""),
            what="the turn waiting for the action server",
        )
        assert db.inbox()[0].attempts == 0, "an outage is not the message's fault"
        actions.fail_with(None)
        wait_until(lambda: telegram.sent, what="the answer once it is back")
        wait_until(lambda: db.inbox()[0].status == "done")
    assert telegram.texts() == [f"Anda menulis: {QUESTION}"]
    [row] = db.inbox()
    assert (row.status, row.attempts) == ("done", 1)


def test_a_database_error_after_the_turn_ends_with_the_apology(
    settings: Settings,
    rasa: FakeRasa,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def complete_failing(self: Any, session: Any, *args: Any, **options: Any) -> bool:
        raise OperationalError("UPDATE inbox_message", {}, Exception("locked"))

    monkeypatch.setattr(Results, "complete", complete_failing)
    sms = FakeSender(SMS)
    with running(settings, senders={SMS: sms}) as client:
        post_twilio(client, "/sms/inbound", sms_params("SM" + "8" * 32, NUMBER, "halo"))
        wait_until(lambda: db.inbox()[0].status == "failed", what="giving up")
        wait_until(lambda: sms.sent, what="the apology")
        health = client.get("/healthz").json()
    assert sms.texts() == [APOLOGY]
    assert health["failed_messages"] == 1


def test_the_apology_follows_a_button_answer_stored_before_the_turn(
    settings: Settings,
    rasa: FakeRasa,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A button press's answer is stored before the turn (seq 0); when the
    turn's result then cannot be stored, the apology goes after it."""
    rasa.replies["halo"] = [
        {"text": "Lanjut?", "buttons": [{"title": "Ya", "payload": "/affirm"}]}
    ]
    telegram = FakeSender(TELEGRAM)
    real_complete = Results.complete

    def complete_failing_for_buttons(
        self: Any, session: Any, pending: Any, outcome: Any, **options: Any
    ) -> bool:
        if pending.message.payload is not None:
            raise OperationalError("UPDATE inbox_message", {}, Exception("locked"))
        return bool(real_complete(self, session, pending, outcome, **options))

    monkeypatch.setattr(Results, "complete", complete_failing_for_buttons)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(620, 4242, "halo"))
        wait_until(lambda: telegram.sent, what="the question")
        data = telegram.sent[0].body["buttons"][0][0]["callback_data"]
        post_telegram(client, telegram_callback(621, 4242, data))
        wait_until(lambda: db.inbox()[-1].status == "failed", what="giving up")
        wait_until(lambda: len(telegram.sent) == 3, what="the apology")
    kinds = [(s.body["kind"], s.body.get("text")) for s in telegram.sent]
    assert kinds == [
        ("message", "Lanjut?"),
        ("answer_callback", None),
        ("message", APOLOGY),
    ]
    assert [row.seq for row in db.outbox() if row.inbox_id == db.inbox()[-1].id] == [
        0,
        1,
    ]
