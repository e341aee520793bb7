"""Storing inbound messages: once per provider id, pseudonymous conversations."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event, insert

from bot.channels.base import SMS, TELEGRAM, InboundMessage
from bot.db import make_engine, make_sessionmaker, utcnow
from bot.insert_ignoring import insert_ignoring_conflict
from bot.messages.inbox import store_inbound
from bot.messages.models import Conversation
from bot.messages.pseudonym import pseudonym
from bot.schema import upgrade
from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import (
    PSEUDONYM_KEY,
    Db,
    FakeSender,
    post_telegram,
    running,
    telegram_update,
    wait_until,
)
from tests.postgres import BACKENDS, fresh_database


def test_the_same_provider_id_is_stored_once(settings: Settings, db: Db) -> None:
    upgrade(settings.database_url)
    message = InboundMessage(TELEGRAM, "1001", "4242", text="halo")
    other = InboundMessage(TELEGRAM, "1002", "4242", text="lagi")
    with db.sessions() as session:
        assert store_inbound(session, message, PSEUDONYM_KEY) is True
        assert store_inbound(session, message, PSEUDONYM_KEY) is False
        # the duplicate did not abort the transaction: later work still commits
        assert store_inbound(session, other, PSEUDONYM_KEY) is True
        session.commit()
    assert [row.provider_id for row in db.inbox()] == ["1001", "1002"]
    assert len(db.conversations()) == 1


def test_same_id_on_another_channel_is_another_message(
    settings: Settings, db: Db
) -> None:
    upgrade(settings.database_url)
    with db.sessions() as session:
        assert store_inbound(
            session, InboundMessage(TELEGRAM, "77", "4242"), PSEUDONYM_KEY
        )
        assert store_inbound(
            session, InboundMessage(SMS, "77", "+6281234567890"), PSEUDONYM_KEY
        )
        session.commit()
    assert len(db.inbox()) == 2


def test_a_redelivered_update_gets_one_reply(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    telegram = FakeSender(TELEGRAM)
    update = telegram_update(5001, 4242, "halo")
    with running(settings, senders={TELEGRAM: telegram}) as client:
        assert post_telegram(client, update).status_code == 200
        wait_until(lambda: telegram.sent, what="the reply")
        assert post_telegram(client, update).status_code == 200
        wait_until(lambda: all(r.status == "done" for r in db.inbox()))
        assert post_telegram(client, update).status_code == 200
    assert len(db.inbox()) == 1
    assert rasa.messages() == ["halo"]
    assert telegram.texts() == ["Anda menulis: halo"]
    assert len(db.outbox()) == 1


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        (TELEGRAM, "4242"),
        (TELEGRAM, "123456789"),
        (SMS, "+6281234567890"),
        (SMS, "sim:+6281234567890"),
    ],
)
def test_pseudonym_hides_the_address(channel: str, address: str) -> None:
    value = pseudonym(PSEUDONYM_KEY, channel, address)
    assert value != address
    assert address not in value
    assert address.lstrip("+") not in value
    assert len(value) == 64 and int(value, 16) >= 0
    assert value == pseudonym(PSEUDONYM_KEY, channel, address)
    assert value != pseudonym(PSEUDONYM_KEY + "x", channel, address)
    other = TELEGRAM if channel == SMS else SMS
    assert value != pseudonym(PSEUDONYM_KEY, other, address)


def test_rasa_sees_the_pseudonym_never_the_address(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    chat_id = 987654321
    with running(settings, senders={TELEGRAM: FakeSender(TELEGRAM)}) as client:
        post_telegram(client, telegram_update(6001, chat_id, "halo"))
        wait_until(lambda: rasa.received, what="Rasa to get the message")
    [conversation] = db.conversations()
    assert conversation.address == str(chat_id)
    [received] = rasa.received
    assert received.sender == conversation.pseudonym
    assert str(chat_id) not in received.sender
    assert str(chat_id) not in repr(received.metadata)
    assert received.metadata["channel"] == TELEGRAM


def test_every_turn_carries_its_inbox_id_as_the_idempotency_key(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    with running(settings, senders={TELEGRAM: FakeSender(TELEGRAM)}) as client:
        post_telegram(client, telegram_update(6101, 5150, "halo"))
        post_telegram(client, telegram_update(6102, 5150, "lagi"))
        wait_until(lambda: len(rasa.received) == 2, what="Rasa to get both")
    rows = sorted(db.inbox(), key=lambda row: row.id)
    keys = [received.metadata["idempotency_key"] for received in rasa.received]
    assert keys == [str(row.id) for row in rows]


def test_a_known_conversation_is_only_read(settings: Settings, db: Db) -> None:
    upgrade(settings.database_url)
    statements: list[str] = []

    def remember(*args: object) -> None:
        statements.append(str(args[2]).split("(")[0].strip())

    with db.sessions() as session:
        store_inbound(session, InboundMessage(TELEGRAM, "1", "4242"), PSEUDONYM_KEY)
        session.commit()
    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        with db.sessions() as session:
            message = InboundMessage(TELEGRAM, "2", "4242", text="lagi")
            assert store_inbound(session, message, PSEUDONYM_KEY)
            session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    inserts = [s for s in statements if s.upper().startswith("INSERT")]
    assert inserts == ["INSERT INTO inbox_message"]
    assert len(db.conversations()) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_creating_a_conversation_ignores_a_clash_on_any_unique_key(
    backend: str, tmp_path: Path
) -> None:
    """Two processes creating one person's conversation at once: PostgreSQL may
    find the clash on the pseudonym's unique index rather than on (channel,
    address), which a conflict target of (channel, address) does not cover (an
    IntegrityError answered the webhook with a 500 in the soak). A clash on the
    pseudonym alone shows the insert ignores it too."""
    with fresh_database(backend, tmp_path, "inbox_clash") as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            sessions = make_sessionmaker(engine)
            now = utcnow()
            values = {
                "channel": SMS,
                "address": "+6281200000001",
                "pseudonym": pseudonym(PSEUDONYM_KEY, SMS, "+6281200000001"),
                "simulated": False,
                "opted_out": False,
                "state": {},
                "created_at": now,
                "updated_at": now,
            }
            with sessions() as session:
                session.execute(insert(Conversation.__table__).values(**values))
                session.commit()
            clash = {**values, "address": "+6281200000002"}
            with sessions() as session:
                assert not insert_ignoring_conflict(
                    session, Conversation.__table__, clash
                )
                # the transaction goes on: the webhook's insert still commits
                assert store_inbound(
                    session, InboundMessage(SMS, "SM1", "+6281200000001"), PSEUDONYM_KEY
                )
                session.commit()
        finally:
            engine.dispose()
