"""Internal events: stored once in an existing conversation, sent to Rasa as an
intent by the worker, and the whole chain from a NIK job to the person's chat."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from bot.channels.base import SMS, TELEGRAM
from bot.gateway.runtime import Gateway
from bot.gateway.turn import APOLOGY
from bot.messages.events import NIK_CHECKED, TO_RASA, enqueue_notification
from bot.messages.inbox import conversation_id
from bot.messages.models import Conversation, InboxMessage
from bot.registry import (
    applicant_steps,
    enqueue_job,
    get_or_create_identity,
    link_identity,
    register_applicant,
)
from bot.registry.models import JOB_NIK, LINK_REGISTRATION, STEP_DONE, STEP_NIK
from bot.schema import upgrade
from bot.settings import Settings
from bot.verification.nik import NikCheckResult, NikRequest, result_for
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

CHAT = 4242
PHONE = "+6281234567890"
INTERNAL_TEXT = TO_RASA[NIK_CHECKED]
RESULT_TEXT = "Pengecekan NIK kamu sudah selesai."


def notify(db: Db, channel: str, address: str, name: str, key: str) -> bool:
    """Store an internal event and commit, as the NIK check runner does."""
    with db.sessions() as session:
        stored = enqueue_notification(session, channel, address, name, key)
        session.commit()
    return stored


def internal_rows(db: Db) -> list[InboxMessage]:
    """Inbox rows of internal events."""
    return [row for row in db.inbox() if row.event and "internal" in row.event]


# --- enqueue_notification -----------------------------------------------------


def test_an_event_is_stored_once_per_key(settings: Settings, db: Db) -> None:
    upgrade(settings.database_url)
    with db.sessions() as session:
        conversation = conversation_id(session, TELEGRAM, str(CHAT), PSEUDONYM_KEY)
        session.commit()

    assert notify(db, TELEGRAM, str(CHAT), NIK_CHECKED, "nik:7")
    assert notify(db, TELEGRAM, str(CHAT), NIK_CHECKED, "nik:7")
    assert notify(db, TELEGRAM, str(CHAT), NIK_CHECKED, "nik:8")

    first, second = db.inbox()
    assert (first.conversation_id, first.channel) == (conversation, TELEGRAM)
    assert (first.provider_id, second.provider_id) == (
        "internal:nik:7",
        "internal:nik:8",
    )
    assert (first.text, first.event, first.status) == (
        "",
        {"internal": NIK_CHECKED},
        "pending",
    )


def test_without_a_conversation_nothing_is_stored_or_created(
    settings: Settings, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade(settings.database_url)
    with caplog.at_level(logging.INFO, logger="bot.messages.events"):
        assert not notify(db, SMS, PHONE, NIK_CHECKED, "nik:1")
    assert db.inbox() == [] and db.conversations() == []
    assert caplog.records, "the skipped event is logged"
    assert PHONE not in caplog.text and PHONE[1:] not in caplog.text


def test_an_event_joins_the_callers_transaction(settings: Settings, db: Db) -> None:
    upgrade(settings.database_url)
    with db.sessions() as session:
        conversation_id(session, TELEGRAM, str(CHAT), PSEUDONYM_KEY)
        session.commit()
        assert enqueue_notification(session, TELEGRAM, str(CHAT), NIK_CHECKED, "k")
        session.rollback()
    assert db.inbox() == []


# --- the worker -----------------------------------------------------------------


def test_the_worker_sends_the_event_to_rasa_as_an_intent_and_stores_replies(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.replies[INTERNAL_TEXT] = [{"text": RESULT_TEXT}]
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(700, CHAT, "halo"))
        wait_until(lambda: len(telegram.sent) == 1, what="the first reply")
        assert notify(db, TELEGRAM, str(CHAT), NIK_CHECKED, "nik:1")
        post_telegram(client, telegram_update(701, CHAT, "lagi"))
        wait_until(lambda: len(telegram.sent) == 3, what="all replies")
    assert rasa.messages() == ["halo", INTERNAL_TEXT, "lagi"]
    internal = rasa.received[1]
    [row] = internal_rows(db)
    assert internal.metadata == {
        "internal": NIK_CHECKED,
        "channel": TELEGRAM,
        "simulated": False,
        "idempotency_key": str(row.id),
    }
    assert "internal" not in rasa.received[0].metadata
    assert telegram.texts() == [
        "Anda menulis: halo",
        RESULT_TEXT,
        "Anda menulis: lagi",
    ]
    assert row.status == "done"
    assert [reply.inbox_id for reply in db.outbox()][1] == row.id


def test_an_sms_event_is_not_read_as_a_menu_choice_or_a_command(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.replies["halo"] = [
        {"text": "Pilih:", "buttons": [{"title": "Ya", "payload": "/affirm"}]}
    ]
    sms = FakeSender(SMS)
    with running(settings, senders={SMS: sms}) as client:
        post_twilio(client, "/sms/inbound", sms_params("SM" + "7" * 32, PHONE, "halo"))
        wait_until(lambda: sms.sent, what="the menu")
        assert notify(db, SMS, PHONE, NIK_CHECKED, "nik:2")
        wait_until(lambda: internal_rows(db)[0].status == "done", what="the event")
    assert rasa.messages() == ["halo", INTERNAL_TEXT]


def test_a_person_typing_the_intent_is_still_neutralised(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    with running(settings, senders={TELEGRAM: FakeSender(TELEGRAM)}) as client:
        post_telegram(client, telegram_update(705, CHAT, INTERNAL_TEXT))
        wait_until(lambda: rasa.received, what="the turn")
    assert rasa.messages() == [INTERNAL_TEXT.lstrip("/")]
    assert "internal" not in rasa.received[0].metadata


def test_an_unknown_internal_event_is_marked_done_without_rasa(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(710, CHAT, "halo"))
        wait_until(lambda: telegram.sent, what="the first reply")
        assert notify(db, TELEGRAM, str(CHAT), "restart", "other:1")
        post_telegram(client, telegram_update(711, CHAT, "lagi"))
        wait_until(lambda: len(telegram.sent) == 2, what="the next reply")
        wait_until(lambda: all(row.status == "done" for row in db.inbox()))
    assert rasa.messages() == ["halo", "lagi"]
    [row] = internal_rows(db)
    assert [reply.inbox_id for reply in db.outbox()].count(row.id) == 0


def test_an_opted_out_conversation_gets_no_internal_turn(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    sms = FakeSender(SMS)
    with running(settings, senders={SMS: sms}) as client:
        post_twilio(client, "/sms/inbound", sms_params("SM" + "8" * 32, PHONE, "STOP"))
        wait_until(lambda: sms.sent, what="the opt-out confirmation")
        assert db.conversations()[0].opted_out
        assert notify(db, SMS, PHONE, NIK_CHECKED, "nik:3")
        wait_until(lambda: internal_rows(db)[0].status == "done", what="the event")
    assert rasa.messages() == []
    assert len(db.outbox()) == 1


def test_a_failing_internal_turn_is_given_up_without_an_apology(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(720, CHAT, "halo"))
        wait_until(lambda: telegram.sent, what="the first reply")
        rasa.fail_with(500)
        assert notify(db, TELEGRAM, str(CHAT), NIK_CHECKED, "nik:4")
        wait_until(lambda: internal_rows(db)[0].status == "failed", what="giving up")
        rasa.fail_with(None)
        post_telegram(client, telegram_update(721, CHAT, "lagi"))
        wait_until(lambda: len(telegram.sent) == 2, what="the next reply")
    assert rasa.refused == FAST.max_turn_attempts
    assert APOLOGY not in telegram.texts()
    assert telegram.texts() == ["Anda menulis: halo", "Anda menulis: lagi"]


# --- the whole chain ------------------------------------------------------------


class AnswerVerifier:
    """A NikVerifier that answers `verified`, and records being closed."""

    def __init__(self) -> None:
        self.requests: list[NikRequest] = []
        self.closed = False

    async def verify(self, request: NikRequest) -> NikCheckResult:
        """Every NIK is fine."""
        self.requests.append(request)
        return result_for("verified")

    async def aclose(self) -> None:
        """Remember the gateway closed us."""
        self.closed = True


async def eventually(condition: Callable[[], Any], what: str) -> None:
    """Poll `condition()` (in a thread: it may use the database) until true."""
    for _ in range(1000):
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


async def test_a_finished_nik_job_reaches_the_persons_chat(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.replies[INTERNAL_TEXT] = [{"text": RESULT_TEXT}]
    telegram = FakeSender(TELEGRAM)
    verifier = AnswerVerifier()
    gateway = await Gateway.start(
        settings, FAST, senders={TELEGRAM: telegram}, verifier=verifier
    )
    try:
        with db.sessions() as session:
            conversation_id(session, TELEGRAM, str(CHAT), PSEUDONYM_KEY)
            applicant = register_applicant(
                session,
                nik="3174011508900001",
                kk_number="3174010101150001",
                full_name="BUDI SANTOSO",
                birth_date=date(1990, 8, 15),
                policy_version="2020",
            )
            identity = get_or_create_identity(session, TELEGRAM, str(CHAT))
            link_identity(session, identity.id, applicant.id, LINK_REGISTRATION)
            enqueue_job(session, applicant.id, JOB_NIK)
            session.commit()
        gateway.nik_checks.notify()
        await eventually(lambda: telegram.sent, "the message in the chat")
    finally:
        await gateway.stop()
    assert telegram.texts() == [RESULT_TEXT]
    assert rasa.messages() == [INTERNAL_TEXT]
    assert len(verifier.requests) == 1 and verifier.closed
    with db.sessions() as session:
        assert applicant_steps(session, applicant.id)[STEP_NIK].status == STEP_DONE
        pseudonym = session.execute(select(Conversation.pseudonym)).scalar_one()
    assert rasa.senders() == {pseudonym}
