"""Stale bursts: several messages of one person that waited in a backlog get
their own Rasa turns (forms and buttons as if answered in time) but one answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.channels.base import SMS, TELEGRAM
from bot.gateway.burst import HELD, HELD_KEY
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
    telegram_update,
    wait_until,
)

STALE = replace(
    FAST, backlog_interval=0.05, stale_after=0.3, notice_wait=600.0, rate_window=5.0
)
NUMBER = "+6281234567890"
REJECTED = "tolak"
"""A message Rasa refuses (HTTP 400): the worker gives it up at once."""


class RejectingRasa(FakeRasa):
    """The fake Rasa, refusing the message `REJECTED`."""

    async def _turn(self, request: Request) -> tuple[Any, list[str]]:
        data = await request.json()
        if data.get("message") == REJECTED:
            return JSONResponse({"error": "bad request"}, status_code=400), []
        return await super()._turn(request)


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    """A running fake Rasa that refuses `REJECTED`."""
    fake = RejectingRasa().start()
    yield fake
    fake.stop()


def _sms(client: object, sid: str, text: str) -> None:
    response = post_twilio(client, "/sms/inbound", sms_params(sid, NUMBER, text))
    assert response.status_code == 200


def _done(db: Db) -> bool:
    rows = db.inbox()
    return bool(rows) and all(row.status == "done" for row in rows)


def test_a_stale_burst_gets_a_turn_per_message_and_one_answer(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    rasa.down()
    with running(settings, STALE, senders={TELEGRAM: telegram}) as client:
        for number, word in enumerate(["satu", "dua", "tiga"]):
            post_telegram(client, telegram_update(700 + number, 4242, word))
        time.sleep(0.5)  # they wait past stale_after
        rasa.up()
        wait_until(lambda: _done(db) and telegram.sent, what="the answer")
        time.sleep(0.3)
    assert rasa.messages() == ["satu", "dua", "tiga"]
    keys = [r.metadata["idempotency_key"] for r in rasa.received]
    assert keys == [str(row.id) for row in db.inbox()], "each turn its own key"
    assert telegram.texts() == [
        "Anda menulis: satu\n\nAnda menulis: dua\n\nAnda menulis: tiga"
    ]
    assert HELD_KEY not in db.conversations()[0].state
    assert [row.last_error for row in db.inbox()] == [HELD, HELD, None]


def test_held_answers_are_stored_with_the_conversation_until_they_go_out(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    rasa.delays["dua"] = 1.0
    rasa.down()
    with running(settings, STALE, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(710, 4242, "satu"))
        post_telegram(client, telegram_update(711, 4242, "dua"))
        time.sleep(0.5)
        rasa.up()
        wait_until(
            lambda: [row.status for row in db.inbox()] == ["done", "pending"],
            what="the first turn done, the second running",
        )
        # committed with the first message's "done": a crash now loses nothing
        held = db.conversations()[0].state[HELD_KEY]
        assert "Anda menulis: satu" in str(held)
        assert db.outbox() == []
        wait_until(lambda: telegram.sent, what="the answer")
    assert telegram.texts() == ["Anda menulis: satu\n\nAnda menulis: dua"]


def test_repeats_in_a_stale_burst_are_answered_once(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    rasa.down()
    with running(settings, STALE, senders={TELEGRAM: telegram}) as client:
        for number, text in enumerate(["halo", "Halo?", "HALO !", "daftar"]):
            post_telegram(client, telegram_update(720 + number, 4242, text))
        time.sleep(0.5)
        rasa.up()
        wait_until(lambda: _done(db) and telegram.sent, what="the answer")
    assert rasa.messages() == ["HALO !", "daftar"]
    assert telegram.texts() == ["Anda menulis: HALO !\n\nAnda menulis: daftar"]
    notes = [row.last_error for row in db.inbox()]
    assert notes[:2] == ["superseded: repeated by the next message"] * 2
    assert notes[2:] == [HELD, None], "held, then answered with the last"


def test_menu_answers_and_typed_answers_in_a_burst_stay_correct(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.replies["daftar"] = [
        {
            "text": "Mau daftar?",
            "buttons": [
                {"title": "Ya", "payload": "/affirm"},
                {"title": "Tidak", "payload": "/deny"},
            ],
        }
    ]
    rasa.replies["/affirm"] = [{"text": "Siapa namamu?"}]
    rasa.replies["Budi Santoso"] = [
        {
            "text": "Halo Budi. Lanjut?",
            "buttons": [
                {"title": "Lanjut", "payload": "/next"},
                {"title": "Berhenti", "payload": "/stop"},
            ],
        }
    ]
    sms = FakeSender(SMS)
    with running(settings, STALE, senders={SMS: sms}) as client:
        _sms(client, "SM1", "daftar")
        wait_until(lambda: sms.sent, what="the menu")
        rasa.down()
        _sms(client, "SM2", "1")  # the menu's first choice
        _sms(client, "SM3", "Budi Santoso")  # a typed form answer, kept whole
        time.sleep(0.5)
        rasa.up()
        wait_until(lambda: len(sms.sent) == 2, what="one answer to both")
        assert db.conversations()[0].state["menu"] == ["/next", "/stop"]
        _sms(client, "SM4", "2")  # the latest menu counts
        wait_until(lambda: len(rasa.received) == 4, what="the last turn")
    assert rasa.messages() == ["daftar", "/affirm", "Budi Santoso", "/stop"]
    answer = sms.texts()[1]
    assert answer == (
        "Siapa namamu?\n\nHalo Budi. Lanjut?\n1. Lanjut\n2. Berhenti\n"
        "Balas angka pilihanmu."
    )


def test_held_answers_go_out_when_the_last_turn_must_be_retried(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    rasa.incomplete["dua"] = 1  # an action of that turn fails once
    rasa.down()
    with running(settings, STALE, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(730, 4242, "satu"))
        post_telegram(client, telegram_update(731, 4242, "dua"))
        time.sleep(0.5)
        rasa.up()
        wait_until(lambda: len(telegram.sent) == 2, what="both answers")
    assert telegram.texts() == ["Anda menulis: satu", "Anda menulis: dua"]
    assert rasa.messages() == ["satu", "dua", "dua"]


def test_held_answers_go_out_with_the_apology_when_the_last_is_given_up(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    rasa.down()
    with running(settings, STALE, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(750, 4242, "satu"))
        post_telegram(client, telegram_update(751, 4242, REJECTED))
        time.sleep(0.5)
        rasa.up()
        wait_until(lambda: len(telegram.sent) == 2, what="the answer and apology")
    assert telegram.texts() == ["Anda menulis: satu", APOLOGY]
    assert [row.status for row in db.inbox()] == ["done", "failed"]
    assert HELD_KEY not in db.conversations()[0].state


def test_messages_answered_in_time_keep_their_own_answers(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    rasa.delays["satu"] = 0.5
    with running(settings, STALE, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(740, 4242, "satu"))
        post_telegram(client, telegram_update(741, 4242, "dua"))
        wait_until(lambda: len(telegram.sent) == 2, what="two answers")
    assert telegram.texts() == ["Anda menulis: satu", "Anda menulis: dua"]
