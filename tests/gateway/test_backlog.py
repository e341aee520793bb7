"""Back-pressure: the measured rate, one wait notice per episode, the intake caps,
and the backlog figures on /healthz."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from bot.channels.base import SMS, TELEGRAM, InboundMessage
from bot.channels.sms import segment_info
from bot.db import make_engine, make_sessionmaker, utcnow
from bot.gateway.backlog import BacklogMonitor, Sample, ThroughputMeter
from bot.gateway.runtime import default_channels
from bot.gateway.wait_notice import (
    OVERFLOW_TEXT,
    WAIT_UNKNOWN_TEXT,
    is_notice,
    wait_text,
)
from bot.handoff.models import TICKET_OPEN, Ticket
from bot.messages.inbox import store_inbound
from bot.messages.models import (
    AUTHOR_SYSTEM,
    INBOX_DONE,
    Conversation,
    InboxMessage,
    OutboxMessage,
)
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
    telegram_update,
    wait_until,
)

T0 = datetime(2026, 12, 5, 9, 0, 0)
QUICK = replace(
    FAST, backlog_interval=0.05, notice_wait=0.3, stale_after=0.3, rate_window=5.0
)


# --- the rate ------------------------------------------------------------------


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_rate_counts_only_busy_intervals() -> None:
    meter = ThroughputMeter(window=60.0)
    assert meter.rate() is None
    # idle traffic: every message answered within the interval it came in
    meter.add(Sample(_at(0), arrivals=0, pending=0, oldest=None))
    meter.add(Sample(_at(1), arrivals=5, pending=1, oldest=_at(0.9)))
    meter.add(Sample(_at(2), arrivals=10, pending=0, oldest=None))
    assert meter.rate() is None, "answering as fast as people write is no backlog"
    # a backlog: the oldest message waits across intervals; 30 rows finished in 10 s
    meter.add(Sample(_at(3), arrivals=60, pending=50, oldest=_at(2.5)))
    meter.add(Sample(_at(13), arrivals=80, pending=40, oldest=_at(2.6)))
    assert meter.rate() == pytest.approx(3.0)
    # a stall: nothing finishes while messages wait
    stalled = ThroughputMeter(window=60.0)
    stalled.add(Sample(_at(0), arrivals=0, pending=4, oldest=_at(-5)))
    stalled.add(Sample(_at(2), arrivals=1, pending=5, oldest=_at(-5)))
    assert stalled.rate() == 0.0


def test_the_rate_forgets_intervals_older_than_the_window() -> None:
    meter = ThroughputMeter(window=10.0)
    meter.add(Sample(_at(0), arrivals=0, pending=100, oldest=_at(-1)))
    meter.add(Sample(_at(5), arrivals=0, pending=50, oldest=_at(-1)))  # 10/s
    meter.add(Sample(_at(30), arrivals=0, pending=45, oldest=_at(-1)))  # 0.2/s
    assert meter.rate() == pytest.approx(5 / 25)


# --- the texts -----------------------------------------------------------------


@pytest.mark.parametrize("seconds", [None, 0.0, 30, 61, 179, 3600, 5400, 7201, 10**6])
def test_every_wait_text_is_one_gsm7_segment_in_our_voice(
    seconds: float | None,
) -> None:
    text = wait_text(seconds)
    info = segment_info(text)
    assert (info.encoding, info.segments) == ("GSM-7", 1), text
    assert text.startswith("Pesanmu sudah kami terima.")
    assert "Anda" not in text
    overflow = segment_info(OVERFLOW_TEXT)
    assert (overflow.encoding, overflow.segments) == ("GSM-7", 1)


def test_the_wait_is_said_in_whole_minutes_then_hours() -> None:
    assert "sekitar 1 menit lagi" in wait_text(30)
    assert "sekitar 2 menit lagi" in wait_text(61)
    assert "sekitar 90 menit lagi" in wait_text(90 * 60)
    assert "sekitar 2 jam lagi" in wait_text(91 * 60)
    assert wait_text(None) == WAIT_UNKNOWN_TEXT
    assert wait_text(3 * 24 * 3600) == WAIT_UNKNOWN_TEXT, "days: no figure"


@pytest.mark.parametrize("seconds", [None, 30, 5400, 7201, 10**6])
def test_every_notice_is_told_apart_from_an_answer(seconds: float | None) -> None:
    assert is_notice(wait_text(seconds)) and is_notice(OVERFLOW_TEXT)
    assert not is_notice("Pesanmu sudah kami terima. Kamu memenuhi syarat.")
    assert not is_notice(wait_text(seconds) + " Kamu memenuhi syarat.")


# --- notices, measured on a database -----------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker]:
    """A migrated database: a SQLite file, then PostgreSQL."""
    url = f"sqlite:///{tmp_path}/backlog.db"
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()


class Clock:
    """A settable clock for the monitor."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _store(
    sessions: sessionmaker, channel: str, address: str, text: str, at: datetime
) -> int:
    with sessions() as session:
        message = InboundMessage(channel, f"{address}-{text}", address, text=text)
        assert store_inbound(session, message, PSEUDONYM_KEY)
        row = (
            session.query(InboxMessage).order_by(InboxMessage.id.desc()).limit(1).one()
        )
        row.received_at = at
        session.commit()
        return int(row.conversation_id)


def _finish(sessions: sessionmaker, *conversations: int) -> None:
    with sessions() as session:
        session.execute(
            update(InboxMessage)
            .where(InboxMessage.conversation_id.in_(conversations))
            .values(status=INBOX_DONE, processed_at=utcnow())
        )
        session.commit()


def _notices(sessions: sessionmaker) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    with sessions() as session:
        for row in session.query(OutboxMessage).order_by(OutboxMessage.id):
            assert row.author == AUTHOR_SYSTEM
            assert row.inbox_id is None
            found.setdefault(row.conversation_id, []).append(row.body["text"])
    return found


def _monitor(sessions: sessionmaker, clock: Clock, **options: Any) -> BacklogMonitor:
    return BacklogMonitor(
        sessions,
        default_channels(),
        replace(FAST, **{"notice_wait": 30.0, **options}),
        clock=clock,
    )


def test_one_notice_per_episode_with_the_wait_from_the_measured_rate(
    sessions: sessionmaker,
) -> None:
    clock = Clock(utcnow())
    start = clock.now
    queue = []
    for number in range(12):  # twelve people, one message each, in this order
        channel = SMS if number % 2 else TELEGRAM
        address = f"+62812000000{number:02d}" if channel == SMS else f"77{number:02d}"
        queue.append(
            _store(sessions, channel, address, "halo", start - timedelta(seconds=100))
        )
    with sessions() as session:  # a menu the person may still answer
        session.execute(
            update(Conversation)
            .where(Conversation.id == queue[3])
            .values(state={"menu": ["/affirm", "/deny"]})
        )
        session.execute(
            update(Conversation)
            .where(Conversation.id == queue[4])
            .values(opted_out=True)
        )
        session.add(
            Ticket(
                conversation_id=queue[5],
                channel=SMS,
                reason="request_human",
                status=TICKET_OPEN,
                created_at=start,
            )
        )
        session.commit()
    monitor = _monitor(sessions, clock)
    assert monitor.tick() == 0, "no rate measured yet: nobody is told anything"
    _finish(sessions, queue[0], queue[1])  # two answered in 20 s: 0.1 a second
    clock.advance(20)
    told = monitor.tick()
    figures = monitor.figures
    assert figures.rate == pytest.approx(0.1)
    assert (figures.pending, figures.conversations) == (10, 10)
    assert figures.oldest_age == pytest.approx(120, abs=1)
    assert figures.expected_wait == pytest.approx(100)
    # the Nth in line waits N rows / 0.1 per second: 10 s, 20 s, ... 100 s;
    # from 30 s on people are told, minutes rounded up
    notices = _notices(sessions)
    expected = {}
    for place, conversation_id in enumerate(queue[2:]):
        wait = (place + 1) / 0.1
        if wait >= 30 and conversation_id not in (queue[4], queue[5]):
            expected[conversation_id] = [
                "Pesanmu sudah kami terima. Antrean sedang panjang, balasan "
                f"sekitar {math.ceil(wait / 60)} menit lagi."
            ]
    assert notices == expected
    assert told == len(expected) == 6
    with sessions() as session:
        kept = session.get(Conversation, queue[3])
        assert kept is not None and kept.state == {"menu": ["/affirm", "/deny"]}
    # the same episode: nobody is told twice
    clock.advance(1)
    assert monitor.tick() == 0
    assert _notices(sessions) == expected
    # a new episode: the person's earlier message was answered, a new one waits
    late = queue[9]
    _finish(sessions, late)
    _store(sessions, SMS, "+6281200000009", "lagi", clock.now)
    clock.advance(9)
    assert monitor.tick() == 1
    assert _notices(sessions)[late] == [
        *expected[late],
        "Pesanmu sudah kami terima. Antrean sedang panjang, balasan sekitar "
        "2 menit lagi.",
    ]
    assert monitor.counts()["notices"] == 7


def test_a_burst_answered_at_full_speed_tells_nobody(sessions: sessionmaker) -> None:
    clock = Clock(utcnow())
    monitor = _monitor(sessions, clock, notice_wait=1.0)
    monitor.tick()
    for number in range(50):
        _store(sessions, TELEGRAM, f"55{number:02d}", "halo", clock.now)
    clock.advance(0.5)
    assert monitor.tick() == 0
    assert monitor.figures.pending == 50
    assert monitor.figures.expected_wait == 0.0, "no backlog seen yet"
    assert _notices(sessions) == {}


def test_a_stalled_queue_tells_those_who_waited_that_it_will_be_soon(
    sessions: sessionmaker,
) -> None:
    clock = Clock(utcnow())
    waited = _store(sessions, SMS, "+6281299990001", "halo", clock.now)
    monitor = _monitor(sessions, clock)
    monitor.tick()
    clock.advance(10)
    fresh = _store(sessions, SMS, "+6281299990002", "halo", clock.now)
    assert monitor.tick() == 0, "nobody has waited 30 s yet"
    clock.advance(25)
    assert monitor.tick() == 1
    assert monitor.figures.rate == 0.0
    assert monitor.figures.expected_wait is None
    assert _notices(sessions) == {waited: [WAIT_UNKNOWN_TEXT]}
    clock.advance(10)
    assert monitor.tick() == 1
    told = [WAIT_UNKNOWN_TEXT]
    assert _notices(sessions) == {waited: told, fresh: told}


def test_the_per_conversation_cap_skips_later_messages(sessions: sessionmaker) -> None:
    with sessions() as session:
        for number in range(5):
            message = InboundMessage(
                SMS,
                f"SM{number}",
                "+6281200000001",
                text=f"pesan {number}",
                payload=f"p{number}",
                event={"n": number},
                user_name="Andi",
                chat_message_id=number,
            )
            assert store_inbound(session, message, PSEUDONYM_KEY, max_pending=3)
        assert not store_inbound(session, message, PSEUDONYM_KEY, max_pending=3), (
            "a redelivery is stored once"
        )
        session.commit()
        rows = session.query(InboxMessage).order_by(InboxMessage.id).all()
    assert [row.status for row in rows] == [
        "pending",
        "pending",
        "pending",
        "skipped",
        "skipped",
    ]
    assert [row.last_error for row in rows] == [None] * 3 + [
        "skipped: 3 messages were waiting"
    ] * 2
    assert [row.processed_at is not None for row in rows] == [False] * 3 + [True] * 2
    assert [
        (row.provider_id, row.text, row.payload, row.event, row.user_name)
        for row in rows
    ] == [(f"SM{n}", f"pesan {n}", f"p{n}", {"n": n}, "Andi") for n in range(5)]
    assert [row.chat_message_id for row in rows] == list(range(5))
    assert {row.attempts for row in rows} == {0}
    assert all(row.received_at is not None for row in rows)


def test_two_messages_at_once_are_counted_one_after_the_other(
    postgres_url: str,
) -> None:
    upgrade(postgres_url)
    db = Db(postgres_url)
    try:
        with db.sessions() as session:  # one message waits already; the cap is 2
            message = InboundMessage(TELEGRAM, "1", "4242", text="satu")
            store_inbound(session, message, PSEUDONYM_KEY, max_pending=2)
            session.commit()
        done = threading.Event()

        def second() -> None:
            with db.sessions() as session:
                message = InboundMessage(TELEGRAM, "3", "4242", text="tiga")
                store_inbound(session, message, PSEUDONYM_KEY, max_pending=2)
                session.commit()
            done.set()

        with db.sessions() as first:
            message = InboundMessage(TELEGRAM, "2", "4242", text="dua")
            store_inbound(first, message, PSEUDONYM_KEY, max_pending=2)
            thread = threading.Thread(target=second)
            thread.start()
            assert not done.wait(0.5), "the count did not wait for the lock"
            first.commit()
        thread.join(timeout=10)
        assert [row.status for row in db.inbox()] == ["pending", "pending", "skipped"]
    finally:
        db.close()


# --- the running gateway -------------------------------------------------------


def _health(client: Any) -> dict[str, Any]:
    response = client.get("/healthz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _system_texts(db: Db) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for row in db.outbox(OutboxMessage.author == AUTHOR_SYSTEM):
        found.setdefault(row.conversation_id, []).append(str(row.body["text"]))
    return found


def test_people_waiting_on_a_stalled_gateway_get_one_notice_each(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    sms, telegram = FakeSender(SMS), FakeSender(TELEGRAM)
    rasa.down()
    with running(settings, QUICK, senders={SMS: sms, TELEGRAM: telegram}) as client:
        post_twilio(client, "/sms/inbound", sms_params("SM1", "+6281200000001", "a"))
        post_twilio(client, "/sms/inbound", sms_params("SM2", "+6281200000002", "b"))
        post_telegram(client, telegram_update(9001, 4242, "halo"))
        wait_until(lambda: len(sms.sent) + len(telegram.sent) == 3, what="notices")
        health = _health(client)
        time.sleep(0.6)  # many more looks at the backlog
        assert sms.texts() == [WAIT_UNKNOWN_TEXT] * 2
        assert telegram.texts() == [WAIT_UNKNOWN_TEXT]
        backlog = health["backlog"]
        assert backlog["pending"] == 3
        assert backlog["conversations"] == 3
        assert backlog["oldest_age_seconds"] >= 0.3
        assert backlog["rate_per_second"] == 0.0
        assert backlog["expected_wait_seconds"] is None
        assert backlog["notices"] == 3
        rasa.up()
        wait_until(lambda: len(sms.sent) == 4 and len(telegram.sent) == 2)
        wait_until(lambda: _health(client)["backlog"]["pending"] == 0)
    assert sorted(rasa.messages()) == ["a", "b", "halo"]


def test_beyond_the_cap_messages_are_kept_unread_and_the_person_told_once(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    sms = FakeSender(SMS)
    options = replace(QUICK, max_pending_per_conversation=3, notice_wait=60.0)
    rasa.down()
    with running(settings, options, senders={SMS: sms}) as client:
        for number in range(5):
            params = sms_params(f"SM{number}", "+6281200000001", f"pesan {number}")
            assert post_twilio(client, "/sms/inbound", params).status_code == 200
        wait_until(lambda: sms.texts() == [OVERFLOW_TEXT], what="the overflow notice")
        params = sms_params("SM9", "+6281200000001", "pesan 9")
        post_twilio(client, "/sms/inbound", params)
        time.sleep(0.4)
        assert sms.texts() == [OVERFLOW_TEXT], "told once"
        assert [row.status for row in db.inbox()] == [
            *["pending"] * 3,
            *["skipped"] * 3,
        ]
        assert _health(client)["backlog"]["skipped"] == 3
        rasa.up()
        wait_until(lambda: all(r.status != "pending" for r in db.inbox()))
    assert rasa.messages() == ["pesan 0", "pesan 1", "pesan 2"]


def test_telegram_is_asked_to_deliver_later_when_the_system_is_full(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    sms, telegram = FakeSender(SMS), FakeSender(TELEGRAM)
    options = replace(QUICK, max_pending=2, notice_wait=60.0)
    rasa.down()
    with running(settings, options, senders={SMS: sms, TELEGRAM: telegram}) as client:
        post_telegram(client, telegram_update(9101, 4242, "satu"))
        post_telegram(client, telegram_update(9102, 5353, "dua"))
        wait_until(lambda: _health(client)["backlog"]["pending"] == 2)
        refused = post_telegram(client, telegram_update(9103, 6464, "tiga"))
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) >= 1
        # Twilio never delivers a refused SMS again: it is stored all the same
        params = sms_params("SM1", "+6281200000001", "sms")
        assert post_twilio(client, "/sms/inbound", params).status_code == 200
        assert len(db.inbox()) == 3
        assert _health(client)["backlog"]["refused"] == 1
        rasa.up()
        wait_until(lambda: _health(client)["backlog"]["pending"] == 0)
        again = post_telegram(client, telegram_update(9103, 6464, "tiga"))
        assert again.status_code == 200
        wait_until(lambda: "tiga" in rasa.messages())
