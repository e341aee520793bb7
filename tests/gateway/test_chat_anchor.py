"""Where a Telegram lookup may count from: the person's newest message stored
before the reply's attempt (`bot.gateway.chat_anchor`), never one stored after
it (its id may be higher than the reply's: counting from it would miss the
reply and send it twice)."""

from __future__ import annotations

from datetime import timedelta

from bot.channels.base import TELEGRAM, InboundMessage
from bot.db import utcnow
from bot.gateway.chat_anchor import CLOCK_MARGIN, newest_inbound_before
from bot.messages.inbox import store_inbound
from bot.messages.models import InboxMessage, OutboxMessage
from bot.schema import upgrade
from bot.settings import Settings
from tests.gateway.conftest import PSEUDONYM_KEY, Db

CHAT = "4242"


def _store(db: Db, number: int, chat_message_id: int | None) -> int:
    """Store the person's message `number`; its inbox id."""
    message = InboundMessage(
        TELEGRAM, str(number), CHAT, text="halo", chat_message_id=chat_message_id
    )
    with db.sessions() as session:
        assert store_inbound(session, message, PSEUDONYM_KEY)
        session.commit()
    return db.inbox()[-1].id


def _reply(db: Db, inbox_id: int | None) -> int:
    """A reply row of the chat (answering `inbox_id`); its id."""
    with db.sessions() as session:
        conversation = db.inbox()[0].conversation_id
        row = OutboxMessage(
            conversation_id=conversation, inbox_id=inbox_id, body={"kind": "message"}
        )
        session.add(row)
        session.commit()
        return int(row.id)


def _received(db: Db, inbox_id: int, ago: timedelta) -> None:
    with db.sessions() as session:
        session.get(InboxMessage, inbox_id).received_at = utcnow() - ago
        session.commit()


def _anchor(db: Db, outbox_id: int) -> int | None:
    with db.sessions() as session:
        return newest_inbound_before(session, outbox_id, utcnow())


def test_the_answered_message_and_earlier_ones_count_later_ones_do_not(
    settings: Settings, db: Db
) -> None:
    upgrade(settings.database_url)
    _store(db, 1, 5)
    answered = _store(db, 2, 7)
    _store(db, 3, 12)  # stored just now, after the attempt may have started
    reply = _reply(db, answered)
    assert _anchor(db, reply) == 7
    _received(db, answered + 1, 2 * CLOCK_MARGIN)  # well before the attempt
    assert _anchor(db, reply) == 12


def test_a_row_answering_no_message_counts_by_time_only(
    settings: Settings, db: Db
) -> None:
    upgrade(settings.database_url)
    older = _store(db, 1, 3)
    _store(db, 2, 9)  # within the clocks' margin of the attempt: not counted
    notice = _reply(db, None)
    assert _anchor(db, notice) is None
    _received(db, older, 2 * CLOCK_MARGIN)
    assert _anchor(db, notice) == 3


def test_messages_without_a_chat_id_give_no_anchor(settings: Settings, db: Db) -> None:
    upgrade(settings.database_url)
    answered = _store(db, 1, None)  # SMS, internal events, rows from before
    assert _anchor(db, _reply(db, answered)) is None
