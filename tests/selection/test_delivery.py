"""Handing an announcement and its reminders to the outbox (SQLite and
PostgreSQL): one outbox row per reachable member and channel, stored with the
row's move; opted-out and unlinked members skipped; what the outbox did flows
back; pause and resume; reminders once; progress figures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.db import make_sessionmaker
from bot.messages.inbox import conversation_id
from bot.messages.models import (
    OPTED_OUT,
    OUTBOX_DELIVERED,
    OUTBOX_FAILED,
    OUTBOX_SENT,
    PRIORITY_BULK,
    Conversation,
    OutboxMessage,
)
from bot.registry.models import ChannelIdentity
from bot.selection import delivery
from bot.selection.announcements import messages_of
from bot.selection.errors import LifecycleError
from bot.selection.lifecycle import close_batch, publish_results
from bot.selection.models import AnnouncementMessage, DueNotice
from bot.selection.progress import ProgressMeter
from bot.selection.selection import select_batch
from tests.registry.conftest import REGISTRY_TABLES
from tests.selection.conftest import CLOSES, member, open_batch

AFTER = CLOSES + timedelta(hours=1)
PUBLISHED = AFTER + timedelta(days=1)
KEY = "delivery-test-pseudonym-key"


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker:
    """Sessions on empty registry and message tables."""
    with engine.begin() as connection:
        connection.execute(delete(OutboxMessage.__table__))
        connection.execute(delete(Conversation.__table__))
        for table in REGISTRY_TABLES:
            connection.execute(delete(AnnouncementMessage.metadata.tables[table]))
    return make_sessionmaker(engine)


def render(channel: str, text: str) -> list[dict[str, Any]]:
    return [{"text": text}]


def _published(session: Session, sessions: sessionmaker) -> dict[str, Any]:
    """Four members (three SMS, one Telegram), published: one SMS member opted
    out, one has no conversation yet."""
    batch_id = open_batch(session)
    people = {
        "sms": member(session, 1, batch_id, kk="3174010101200011"),
        "stop": member(session, 2, batch_id, kk="3174010101200012"),
        "new": member(session, 3, batch_id, kk="3174010101200013"),
        "tg": member(session, 4, batch_id, kk="3174010101200014", channel="telegram"),
    }
    for name in ("sms", "stop", "tg"):
        identity = session.execute(
            select(ChannelIdentity).where(
                ChannelIdentity.applicant_id == people[name].id
            )
        ).scalar_one()
        cid = conversation_id(session, identity.channel, identity.external_id, KEY)
        if name == "stop":
            session.execute(
                update(Conversation)
                .where(Conversation.id == cid)
                .values(opted_out=True)
            )
    session.commit()
    close_batch(session, batch_id, AFTER)
    session.commit()
    select_batch(sessions.begin, batch_id, AFTER, places=2)
    publish_results(session, batch_id, PUBLISHED)
    session.commit()
    return {"batch": delivery.active_batches(session)[0], "people": people}


def _feed_all(session: Session, batch: delivery.ActiveBatch) -> delivery.Fed:
    total = delivery.Fed()
    for channel in ("sms", "telegram"):
        fed = delivery.feed_announcements(
            session, batch, channel, 10, PUBLISHED, render, KEY
        )
        total.queued += fed.queued
        total.skipped += fed.skipped
        total.outbox_ids += fed.outbox_ids
    session.commit()
    return total


def test_each_member_gets_one_bulk_outbox_row_with_its_move(
    sessions: sessionmaker, session: Session
) -> None:
    setup = _published(session, sessions)
    batch, people = setup["batch"], setup["people"]
    fed = _feed_all(session, batch)
    assert (fed.queued, fed.skipped) == (3, 1)
    rows = session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars()
    rows = list(rows)
    assert len(rows) == 3
    assert {row.priority for row in rows} == {PRIORITY_BULK}
    assert all(row.author == "system" for row in rows)
    assert all("Gelombang 1" in row.body["text"] for row in rows)
    for name, status in (("sms", "queued"), ("stop", "skipped"), ("tg", "queued")):
        (message,) = messages_of(session, people[name].id)
        assert message.status == status, name
    # the member without a conversation got one
    new = messages_of(session, people["new"].id)[0]
    assert new.status == "queued"
    # fed again: nothing more (every row moved once)
    again = _feed_all(session, batch)
    assert (again.queued, again.skipped) == (0, 0)
    assert delivery.active_batches(session) == []
    assert delivery.bulk_in_outbox(session) == {"sms": 2, "telegram": 1}


def test_outcomes_flow_back_to_the_announcement(
    sessions: sessionmaker, session: Session
) -> None:
    setup = _published(session, sessions)
    batch, people = setup["batch"], setup["people"]
    fed = _feed_all(session, batch)
    by_outbox = {
        row.outbox_id: row
        for name in ("sms", "new", "tg")
        for row in messages_of(session, people[name].id)
    }
    sms_id, new_id, tg_id = (
        messages_of(session, people[name].id)[0].outbox_id
        for name in ("sms", "new", "tg")
    )
    assert set(by_outbox) == set(fed.outbox_ids)
    for outbox_id, values in (
        (sms_id, {"status": OUTBOX_SENT, "provider_message_id": "SM1"}),
        (new_id, {"status": OUTBOX_FAILED, "last_error": OPTED_OUT}),
        (tg_id, {"status": OUTBOX_FAILED, "last_error": "blocked"}),
    ):
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(**values)
        )
    session.commit()
    assert delivery.settle(session, batch.id, PUBLISHED) == 3
    session.commit()
    statuses = {
        name: messages_of(session, people[name].id)[0].status
        for name in ("sms", "new", "tg")
    }
    assert statuses == {"sms": "sent", "new": "skipped", "tg": "failed"}
    assert delivery.settle(session, batch.id, PUBLISHED) == 0
    delivery.follow_outbox_status(session, sms_id, OUTBOX_DELIVERED, PUBLISHED)
    session.commit()
    assert messages_of(session, people["sms"].id)[0].status == "delivered"


def test_pause_stops_feeding_and_resume_goes_on(
    sessions: sessionmaker, session: Session
) -> None:
    setup = _published(session, sessions)
    batch = setup["batch"]
    delivery.set_paused(session, batch.id, True, PUBLISHED)
    session.commit()
    with pytest.raises(LifecycleError) as twice:
        delivery.set_paused(session, batch.id, True, PUBLISHED)
    assert twice.value.code == "already_paused"
    session.rollback()
    assert delivery.active_batches(session) == []
    delivery.set_paused(session, batch.id, False, PUBLISHED)
    session.commit()
    assert delivery.active_batches(session) == [batch]
    with pytest.raises(LifecycleError) as running:
        delivery.set_paused(session, batch.id, False, PUBLISHED)
    assert running.value.code == "not_paused"


def test_pause_is_refused_before_publication(
    sessions: sessionmaker, session: Session
) -> None:
    batch_id = open_batch(session)
    with pytest.raises(LifecycleError) as refused:
        delivery.set_paused(session, batch_id, True, PUBLISHED)
    assert refused.value.code == "not_published"


def test_reminders_go_once_to_each_reachable_channel(
    sessions: sessionmaker, session: Session
) -> None:
    setup = _published(session, sessions)
    notices = session.execute(select(DueNotice).order_by(DueNotice.due_at)).scalars()
    notices = list(notices)
    assert notices, "the selected members have reminders"
    first_due = notices[0].due_at
    assert delivery.reminders_due(session, first_due - timedelta(seconds=1), 10) == 0
    due = delivery.reminders_due(session, first_due, 10)
    assert due == sum(1 for n in notices if n.due_at == first_due)
    fed = delivery.feed_reminders(session, first_due, 10, render, KEY)
    session.commit()
    opted_out_selected = any(
        n.applicant_id == setup["people"]["stop"].id and n.due_at == first_due
        for n in notices
    )
    assert fed.queued + fed.skipped == due
    assert fed.skipped == (1 if opted_out_selected else 0)
    texts = [
        row.body["text"]
        for row in session.execute(
            select(OutboxMessage).where(OutboxMessage.id.in_(fed.outbox_ids))
        ).scalars()
    ]
    assert texts and all(
        text.startswith("Pengingat Prakerja: 7 hari") for text in texts
    )
    again = delivery.feed_reminders(session, first_due, 10, render, KEY)
    assert (again.queued, again.skipped) == (0, 0)


def test_progress_counts_and_rate(sessions: sessionmaker, session: Session) -> None:
    setup = _published(session, sessions)
    clock = iter([0.0, 10.0])
    meter = ProgressMeter(clock=lambda: next(clock))
    first = meter.look(session, setup["batch"].id, PUBLISHED)
    assert (first.total, first.remaining, first.rate, first.finish) == (
        4,
        4,
        None,
        None,
    )
    _feed_all(session, setup["batch"])
    later = meter.look(session, setup["batch"].id, PUBLISHED)
    assert (later.skipped, later.remaining, later.done) == (1, 3, 1)
    assert later.rate == pytest.approx(0.1)
    assert later.finish == PUBLISHED + timedelta(seconds=30)
