"""Bulk rows (announcements, reminders) never hold up a reply to someone who is
talking: the outbox claims due live rows first, whatever their age; and the
announcement sender hands a published batch to the outbox."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.channels.base import TELEGRAM, SendResult
from bot.db import utcnow
from bot.messages.inbox import conversation_id
from bot.messages.models import PRIORITY_BULK, OutboxMessage
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

BULK = 200
CHATTER = 4242


class SlowSender(FakeSender):
    """A provider taking 50 ms a message."""

    async def send(self, address: str, body: dict[str, Any]) -> SendResult:
        await asyncio.sleep(0.05)
        return await super().send(address, body)


def test_a_live_reply_overtakes_older_bulk_rows(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    upgrade(settings.database_url)
    now = utcnow()
    with db.sessions() as session:
        for person in range(BULK):
            conversation = conversation_id(
                session, TELEGRAM, str(1000 + person), PSEUDONYM_KEY
            )
            session.add(
                OutboxMessage(
                    conversation_id=conversation,
                    seq=0,
                    body={"text": f"Hasil seleksi {person}"},
                    author="system",
                    priority=PRIORITY_BULK,
                    status="pending",
                    next_attempt_at=now,
                )
            )
        session.commit()
    telegram = SlowSender(TELEGRAM)
    with running(settings, senders={TELEGRAM: telegram}) as client:
        wait_until(lambda: telegram.sent, what="the bulk rows going out")
        post_telegram(client, telegram_update(1, CHATTER, "halo"))
        wait_until(
            lambda: any(s.address == str(CHATTER) for s in telegram.sent),
            what="the live reply",
        )
        addresses = [s.address for s in telegram.sent]
    position = addresses.index(str(CHATTER))
    # by age it would be the last of BULK + 1; live first, it waits for at
    # most the sends already in flight and the Rasa turn
    assert position < BULK // 2, position
    assert len(addresses) <= BULK
