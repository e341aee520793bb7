"""Two messages of one person stored at once by two processes: ids in commit order.

The worker hands a conversation's pending rows to Rasa in id order. On
PostgreSQL an id is drawn when the row is inserted, not when it commits: without
care, the second message (a higher id) could commit first, be claimed and
answered, and the first one would then be answered after it. Storing a message
locks its conversation's row until the commit, so one conversation's messages
commit in the order of their ids.
"""

from __future__ import annotations

import threading

from sqlalchemy import select

from bot.channels.base import TELEGRAM, InboundMessage
from bot.messages.inbox import store_inbound
from bot.messages.models import InboxMessage
from bot.schema import upgrade
from tests.gateway.conftest import PSEUDONYM_KEY, Db

BLOCKED_FOR = 1.0
"""Seconds the second store must stay blocked while the first is uncommitted."""


def test_a_later_message_of_one_person_commits_after_the_earlier(
    postgres_url: str,
) -> None:
    upgrade(postgres_url)
    db = Db(postgres_url)
    try:
        with db.sessions() as session:  # the conversation exists already
            store_inbound(
                session, InboundMessage(TELEGRAM, "1", "4242", text="x"), PSEUDONYM_KEY
            )
            session.commit()
        stored = threading.Event()
        errors: list[BaseException] = []

        def second() -> None:
            try:
                with db.sessions() as session:
                    message = InboundMessage(TELEGRAM, "3", "4242", text="dua")
                    store_inbound(session, message, PSEUDONYM_KEY)
                    session.commit()
                stored.set()
            except BaseException as exc:  # reported by the test below
                errors.append(exc)
                stored.set()

        with db.sessions() as first:
            message = InboundMessage(TELEGRAM, "2", "4242", text="satu")
            store_inbound(first, message, PSEUDONYM_KEY)
            thread = threading.Thread(target=second)
            thread.start()
            blocked = not stored.wait(BLOCKED_FOR)
            first.commit()
        thread.join(timeout=10)
        assert not errors, errors
        assert blocked, "the later message committed while the earlier was open"
        with db.sessions() as session:
            texts = session.execute(
                select(InboxMessage.text).order_by(InboxMessage.id)
            ).scalars()
            assert list(texts) == ["x", "satu", "dua"]
    finally:
        db.close()
