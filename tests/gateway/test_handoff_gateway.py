"""The handoff in the running gateway: while a ticket is active Rasa hears
nothing, "batal" (or the cancel button) brings the bot back, agents' replies and
queue updates reach Telegram and SMS with their author, the end of the handoff
makes the bot re-read the status, and the monitor tells a grown wait once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot.channels.base import SMS, TELEGRAM
from bot.db import utcnow
from bot.effects import once
from bot.gateway.runtime import HANDOFF_MONITOR_TASK, Gateway
from bot.handoff import (
    AGENT_REPLY,
    HANDOFF_RESOLVED,
    QUEUE_UPDATE,
    TICKET_CANCELLED,
    TicketInfo,
    agent_reply_key,
    cancelled_text,
    claim,
    get_ticket,
    notify_ticket,
    open_ticket,
    record_wait_told,
    resolve,
    resolved_key,
    transcript,
    wait_grew_text,
)
from bot.handoff.tickets import HANDOFF_EFFECT
from bot.messages.inbox import conversation_id
from bot.messages.models import Conversation, InboxMessage
from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import (
    FAST,
    PSEUDONYM_KEY,
    Db,
    FakeSender,
    make_settings,
    post_telegram,
    post_twilio,
    running,
    sms_params,
    telegram_callback,
    telegram_update,
    wait_until,
)
from tests.gateway.fake_actions import FakeActionServer

CHAT = 5151
PHONE = "+6281298765432"
AGENT = 7
QUEUED = "Permintaanmu sudah masuk antrean petugas."


@pytest.fixture(params=["sqlite", "postgresql"])
def any_settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    rasa: FakeRasa,
    actions: FakeActionServer,
) -> Settings:
    """Settings on a fresh SQLite file, then on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return make_settings(tmp_path, rasa.url, actions_url=actions.url)
    url = request.getfixturevalue("postgres_url")
    return make_settings(tmp_path, rasa.url, url, actions.url)


@pytest.fixture
def any_db(any_settings: Settings) -> Iterator[Db]:
    """The test database of `any_settings`."""
    database = Db(any_settings.database_url)
    yield database
    database.close()


def conversation_of(db: Db, address: str) -> int:
    """The id of the conversation with `address` (it must exist)."""
    [row] = db.conversations(Conversation.address == address)
    return int(row.id)


def open_for(db: Db, address: str) -> TicketInfo:
    """Open a ticket in the conversation with `address`, as the action does."""
    with db.sessions() as session:
        ticket, created = open_ticket(
            session, conversation_of(db, address), "request_human"
        )
        session.commit()
    assert created
    return ticket


def tell(db: Db, ticket_id: int, name: str, key: str, **extra: Any) -> None:
    """Store an internal event for the ticket's conversation and commit, as the
    console does (the worker finds it at its next poll)."""
    with db.sessions() as session:
        assert notify_ticket(session, ticket_id, name, key, **extra)
        session.commit()


def done(db: Db, provider_id: str) -> Callable[[], bool]:
    """A condition: the inbox row with this provider id is processed."""

    def check() -> bool:
        rows = db.inbox(InboxMessage.provider_id == provider_id)
        return bool(rows) and rows[0].status == "done"

    return check


def hold(db: Db, address: str, until: datetime | None) -> None:
    """Keep the worker away from the conversation until `until` (None: no
    more), so rows can be stored behind each other before any is processed."""
    with db.sessions() as session:
        session.execute(
            update(Conversation)
            .where(Conversation.address == address)
            .values(not_before=until)
        )
        session.commit()


def update_id(number: int) -> str:
    """The stored provider id of Telegram update `number` (no bot token set)."""
    return str(number)


# --- quiet while handed off, and back on "batal" ------------------------------------


def test_while_a_ticket_is_active_rasa_hears_nothing_until_batal(
    any_settings: Settings, rasa: FakeRasa, any_db: Db
) -> None:
    db = any_db
    telegram = FakeSender(TELEGRAM)
    with running(any_settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(1, CHAT, "halo"))
        wait_until(lambda: len(telegram.sent) == 1, what="the first reply")
        ticket = open_for(db, str(CHAT))

        post_telegram(client, telegram_update(2, CHAT, "tolong cepat ya"))
        post_telegram(client, telegram_update(3, CHAT, "NIK saya ditolak"))
        wait_until(done(db, update_id(3)), what="the messages marked done")
        assert rasa.messages() == ["halo"]
        assert len(telegram.sent) == 1

        post_telegram(client, telegram_update(4, CHAT, "Batal"))
        wait_until(lambda: len(telegram.sent) == 2, what="the confirmation")
        assert telegram.texts()[-1] == cancelled_text()
        with db.sessions() as session:
            assert get_ticket(session, ticket.id).status == TICKET_CANCELLED

        post_telegram(client, telegram_update(5, CHAT, "lagi"))
        wait_until(lambda: len(telegram.sent) == 3, what="the bot again")
    assert rasa.messages() == ["halo", "lagi"]
    assert [row.author for row in db.outbox()] == ["bot", "system", "bot"]
    with db.sessions() as session:
        turns = transcript(session, ticket.conversation_id)
    assert [(t.author, t.text) for t in turns] == [
        ("user", "halo"),
        ("bot", "Anda menulis: halo"),
        ("user", "tolong cepat ya"),
        ("user", "NIK saya ditolak"),
        ("user", "Batal"),
        ("system", cancelled_text()),
        ("user", "lagi"),
        ("bot", "Anda menulis: lagi"),
    ]


def test_the_message_whose_own_turn_opened_the_ticket_still_gets_its_answer(
    any_settings: Settings, rasa: FakeRasa, any_db: Db
) -> None:
    """Rasa (or a gateway) died after the handoff action opened the ticket and
    before the answer was stored: the retried message goes to Rasa again (which
    replays the turn's answer), not to the agent; a later message does."""
    db = any_db
    telegram = FakeSender(TELEGRAM)
    with running(any_settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(1, CHAT, "halo"))
        wait_until(lambda: len(telegram.sent) == 1, what="the first reply")
        hold(db, str(CHAT), utcnow() + timedelta(hours=1))
        post_telegram(client, telegram_update(2, CHAT, "sambungkan ke petugas"))
        wait_until(lambda: bool(db.inbox(InboxMessage.provider_id == update_id(2))),
                   what="the request stored")  # fmt: skip
        [request] = db.inbox(InboxMessage.provider_id == update_id(2))
        conversation = conversation_of(db, str(CHAT))
        # the interrupted turn: the action opened the ticket under the turn's key
        once(db.sessions, str(request.id), HANDOFF_EFFECT,
             lambda session: open_ticket(session, conversation, "request_human")[0],
             TicketInfo)  # fmt: skip
        hold(db, str(CHAT), None)
        wait_until(lambda: len(telegram.sent) == 2, what="the request's answer")
        post_telegram(client, telegram_update(3, CHAT, "halo? ada orang?"))
        wait_until(done(db, update_id(3)), what="the next message")
    assert rasa.messages() == ["halo", "sambungkan ke petugas"]
    assert telegram.texts()[-1] == "Anda menulis: sambungkan ke petugas"
    assert len(telegram.sent) == 2


def test_the_cancel_button_works_on_telegram_and_as_an_sms_menu_number(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    button = {"title": "Batal", "payload": "/handoff_cancel"}
    rasa.replies["minta petugas"] = [{"text": QUEUED, "buttons": [button]}]
    telegram, sms = FakeSender(TELEGRAM), FakeSender(SMS)
    with running(settings, senders={TELEGRAM: telegram, SMS: sms}) as client:
        post_telegram(client, telegram_update(10, CHAT, "minta petugas"))
        post_twilio(
            client, "/sms/inbound", sms_params("SM" + "1" * 32, PHONE, "minta petugas")
        )
        wait_until(lambda: telegram.sent and sms.sent, what="the queued texts")
        assert "1. Batal" in sms.texts()[0]
        tickets = [open_for(db, str(CHAT)), open_for(db, PHONE)]
        data = telegram.sent[0].body["buttons"][0][0]["callback_data"]
        post_telegram(client, telegram_callback(11, CHAT, data))
        post_twilio(client, "/sms/inbound", sms_params("SM" + "2" * 32, PHONE, "1"))
        wait_until(
            lambda: cancelled_text() in telegram.texts() and len(sms.sent) == 2,
            what="both confirmations",
        )
    assert sms.texts()[1] == cancelled_text()
    assert rasa.messages() == ["minta petugas", "minta petugas"]
    with db.sessions() as session:
        statuses = {get_ticket(session, t.id).status for t in tickets}
    assert statuses == {TICKET_CANCELLED}


def test_a_nik_result_waits_quietly_while_a_ticket_is_active(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(20, CHAT, "halo"))
        wait_until(lambda: telegram.sent, what="the first reply")
        ticket = open_for(db, str(CHAT))
        tell(db, ticket.id, "nik_checked", "nik:1")
        wait_until(done(db, "internal:nik:1"), what="the event")
    assert rasa.messages() == ["halo"]
    assert len(telegram.sent) == 1


# --- agents' replies and queue updates ------------------------------------------------


def test_an_agent_reply_reaches_telegram_and_sms_as_the_agents(
    any_settings: Settings, rasa: FakeRasa, any_db: Db
) -> None:
    db = any_db
    reply = "Halo, saya Sari dari tim Prakerja. NIK kamu sedang saya periksa."
    telegram, sms = FakeSender(TELEGRAM), FakeSender(SMS)
    with running(any_settings, senders={TELEGRAM: telegram, SMS: sms}) as client:
        post_telegram(client, telegram_update(30, CHAT, "halo"))
        post_twilio(client, "/sms/inbound", sms_params("SM" + "3" * 32, PHONE, "halo"))
        wait_until(lambda: telegram.sent and sms.sent, what="the first replies")
        for address in (str(CHAT), PHONE):
            ticket = open_for(db, address)
            key = agent_reply_key(ticket.id, "r1")
            tell(db, ticket.id, AGENT_REPLY, key, text=reply, data={"agent_id": AGENT})
        wait_until(
            lambda: len(telegram.sent) == 2 and len(sms.sent) == 2, what="replies"
        )
    assert telegram.sent[1].body == {"kind": "message", "text": reply, "buttons": []}
    assert telegram.sent[1].address == str(CHAT)
    assert sms.sent[1].body == {"kind": "sms", "text": reply}
    assert sms.sent[1].address == PHONE
    assert rasa.messages() == ["halo", "halo"]
    agent_rows = [row for row in db.outbox() if row.author == "agent"]
    assert len(agent_rows) == 2
    assert {(row.agent_id, row.status) for row in agent_rows} == {(AGENT, "sent")}


def test_an_agent_reply_to_an_opted_out_number_is_not_sent(
    settings: Settings, rasa: FakeRasa, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    sms = FakeSender(SMS)
    with running(settings, senders={SMS: sms}) as client:
        post_twilio(client, "/sms/inbound", sms_params("SM" + "4" * 32, PHONE, "halo"))
        wait_until(lambda: sms.sent, what="the first reply")
        ticket = open_for(db, PHONE)
        post_twilio(client, "/sms/inbound", sms_params("SM" + "5" * 32, PHONE, "STOP"))
        wait_until(lambda: len(sms.sent) == 2, what="the opt-out confirmation")
        assert db.conversations()[0].opted_out  # the channel still comes first
        with caplog.at_level(logging.WARNING, logger="bot.gateway"):
            tell(
                db,
                ticket.id,
                AGENT_REPLY,
                agent_reply_key(ticket.id, "r1"),
                text="Halo, masih di sana?",
                data={"agent_id": AGENT},
            )
            wait_until(
                done(db, f"internal:{agent_reply_key(ticket.id, 'r1')}"),
                what="the reply handled",
            )
    assert len(sms.sent) == 2
    [row] = [row for row in db.outbox() if row.author == "agent"]
    assert (row.status, row.last_error, row.agent_id) == ("failed", "opted out", AGENT)
    assert "opted out" in caplog.text and "reply not sent" in caplog.text
    assert PHONE not in caplog.text and "masih di sana" not in caplog.text


def test_an_agent_reply_queued_behind_the_persons_batal_is_not_sent(
    any_settings: Settings, rasa: FakeRasa, any_db: Db
) -> None:
    db = any_db
    telegram = FakeSender(TELEGRAM)
    with running(any_settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(35, CHAT, "halo"))
        wait_until(lambda: telegram.sent, what="the first reply")
        ticket = open_for(db, str(CHAT))
        hold(db, str(CHAT), utcnow() + timedelta(hours=1))
        post_telegram(client, telegram_update(36, CHAT, "batal"))
        key = agent_reply_key(ticket.id, "r1")
        data = {"agent_id": AGENT, "ticket_id": ticket.id}
        tell(db, ticket.id, AGENT_REPLY, key, text="Halo, saya cek ya.", data=data)
        hold(db, str(CHAT), None)
        wait_until(done(db, f"internal:{key}"), what="the reply handled")
        wait_until(lambda: len(telegram.sent) == 2, what="the confirmation")
    assert telegram.texts() == ["Anda menulis: halo", cancelled_text()]
    with db.sessions() as session:
        assert get_ticket(session, ticket.id).status == TICKET_CANCELLED
    [row] = [row for row in db.outbox() if row.author == "agent"]
    assert (row.status, row.last_error, row.agent_id) == (
        "failed",
        "ticket cancelled",
        AGENT,
    )


def test_an_agent_reply_just_before_resolving_is_still_sent(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(37, CHAT, "halo"))
        wait_until(lambda: telegram.sent, what="the first reply")
        ticket = open_for(db, str(CHAT))
        hold(db, str(CHAT), utcnow() + timedelta(hours=1))
        key = agent_reply_key(ticket.id, "r1")
        data = {"agent_id": AGENT, "ticket_id": ticket.id}
        tell(db, ticket.id, AGENT_REPLY, key, text="Sudah beres ya.", data=data)
        with db.sessions() as session:
            resolve(session, ticket.id, AGENT)
            session.commit()
        hold(db, str(CHAT), None)
        wait_until(done(db, f"internal:{key}"), what="the reply handled")
        wait_until(lambda: len(telegram.sent) == 2, what="the reply sent")
    assert telegram.texts() == ["Anda menulis: halo", "Sudah beres ya."]


def test_a_queue_update_goes_out_only_while_the_ticket_is_open(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    text = wait_grew_text(2, timedelta(minutes=18))
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(40, CHAT, "halo"))
        wait_until(lambda: telegram.sent, what="the first reply")
        ticket = open_for(db, str(CHAT))
        data = {"ticket_id": ticket.id}
        tell(db, ticket.id, QUEUE_UPDATE, "q1", text=text, data=data)
        wait_until(lambda: len(telegram.sent) == 2, what="the update")
        with db.sessions() as session:
            claim(session, ticket.id, AGENT)
            session.commit()
        tell(db, ticket.id, QUEUE_UPDATE, "q2", text=text, data=data)
        wait_until(done(db, "internal:q2"), what="the late update")
    assert telegram.texts() == ["Anda menulis: halo", text]
    assert [row.author for row in db.outbox()] == ["bot", "system"]
    assert rasa.messages() == ["halo"]


# --- the end of the handoff ---------------------------------------------------------


def test_a_resolved_handoff_makes_the_bot_read_the_status(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.replies["/check_status"] = [{"text": "Percakapan dengan petugas selesai."}]
    telegram = FakeSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(50, CHAT, "halo"))
        wait_until(lambda: telegram.sent, what="the first reply")
        ticket = open_for(db, str(CHAT))
        with db.sessions() as session:
            resolve(session, ticket.id, AGENT)
            notify_ticket(session, ticket.id, HANDOFF_RESOLVED, resolved_key(ticket.id))
            session.commit()
        wait_until(lambda: len(telegram.sent) == 2, what="the bot's status")
        post_telegram(client, telegram_update(51, CHAT, "lagi"))
        wait_until(lambda: len(telegram.sent) == 3, what="the bot again")
    assert rasa.messages() == ["halo", "/check_status", "lagi"]
    metadata = dict(rasa.received[1].metadata)
    assert metadata.pop("idempotency_key").isdigit()
    assert metadata == {
        "internal": HANDOFF_RESOLVED,
        "channel": TELEGRAM,
        "simulated": False,
    }
    assert telegram.texts()[1] == "Percakapan dengan petugas selesai."


# --- the monitor -------------------------------------------------------------------


async def test_the_monitor_tells_a_grown_wait_once(
    tmp_path: Path, rasa: FakeRasa, actions: FakeActionServer
) -> None:
    settings = make_settings(
        tmp_path,
        rasa.url,
        actions_url=actions.url,
        AGENT_HOURS="00:00-24:00",
        AGENT_DAYS="1-7",
    )
    db = Db(settings.database_url)
    telegram = FakeSender(TELEGRAM)
    gateway = await Gateway.start(
        settings, FAST, senders={TELEGRAM: telegram}, agents_online=lambda s, n: 1
    )
    try:
        # the test looks itself: the monitor's own first look, at start, could
        # otherwise come after the tickets below and tell the wait before it
        gateway.handoff_monitor.stop()
        await next(t for t in gateway.tasks if t.get_name() == HANDOFF_MONITOR_TASK)

        def waiting() -> TicketInfo:
            now = utcnow()
            with db.sessions() as session:
                for number in (1, 2):  # two people ahead
                    ahead = conversation_id(
                        session, TELEGRAM, f"a{number}", PSEUDONYM_KEY
                    )
                    first, _ = open_ticket(
                        session, ahead, "fallback", now=now - timedelta(minutes=9)
                    )
                    record_wait_told(session, first.id, 60, now=now)  # no growth
                chat = conversation_id(session, TELEGRAM, str(CHAT), PSEUDONYM_KEY)
                ticket, _ = open_ticket(session, chat, "complaint", now=now)
                record_wait_told(session, ticket.id, 6, now=now)  # told: 6 minutes
                session.commit()
            return ticket

        ticket = await asyncio.to_thread(waiting)
        assert await gateway.handoff_monitor.run_once() >= 1
        for _ in range(1000):
            if telegram.sent:
                break
            await asyncio.sleep(0.02)
        assert await gateway.handoff_monitor.run_once() == 0
    finally:
        await gateway.stop()
    mine = [row for row in db.inbox() if row.conversation_id == ticket.conversation_id]
    assert len(mine) == 1
    assert [s.address for s in telegram.sent] == [str(CHAT)]  # the others: no chat
    assert telegram.texts() == [wait_grew_text(3, timedelta(minutes=18))]
    assert [row.author for row in db.outbox()] == ["system"]
    assert rasa.messages() == []
    db.close()
