"""A send's request is marked in Redis as it leaves (`bot.gateway.send_marks`): a
takeover sends a reply whose request never left at once, instead of waiting
out Telegram's 30 s in flight, and asks Telegram when a mark says it left.

The marks against the real Redis (a restart that may have lost marks, a mark
past its lifetime, Redis down); then a gateway with the real python-telegram-bot
client and a local fake of the Bot API, whose send "dies" before its request or
after it arrived.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.channels.base import TELEGRAM
from bot.channels.telegram import TelegramSender
from bot.db import utcnow
from bot.gateway import outbox as outbox_module
from bot.gateway import send_marks
from bot.gateway.send_marks import MarkCheck, SendMarks
from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.fakes.telegram_api import FakeTelegramApi
from tests.gateway.conftest import (
    FAST,
    Db,
    make_settings,
    post_telegram,
    running,
    telegram_update,
    unknown_sends,
    wait_until,
)
from tests.gateway.fake_actions import FakeActionServer
from tests.redis_server import redis_url_or_skip, unique_bot_token

CHAT = 4242
NOWHERE = "redis://127.0.0.1:1"
"""A Redis that refuses every connection."""


def marks_at(url: str, **kwargs: Any) -> SendMarks:
    """Marks under a key prefix of their own (the test Redis is shared)."""
    return SendMarks(url, prefix=f"test:sending:{uuid.uuid4().hex}", **kwargs)


async def _marked(marks: SendMarks, mark: bool, attempt: datetime) -> MarkCheck:
    await marks.start()
    try:
        if mark:
            assert await marks.mark(7, attempt)
        return await marks.check(7, attempt)
    finally:
        await marks.aclose()


def test_a_marked_request_left_and_an_unmarked_one_never_did() -> None:
    url = redis_url_or_skip()
    attempt = utcnow() + timedelta(seconds=2)  # after the epoch began
    left = asyncio.run(_marked(marks_at(url), True, attempt))
    assert left.left_at is not None and not left.never_left
    assert abs(left.left_at - (attempt - timedelta(seconds=2)).timestamp()) < 60
    never = asyncio.run(_marked(marks_at(url), False, attempt))
    assert never == MarkCheck(never_left=True)


def test_an_attempt_older_than_the_epoch_or_the_marks_life_proves_nothing() -> None:
    url = redis_url_or_skip()
    before_epoch = utcnow() - timedelta(seconds=5)
    assert asyncio.run(_marked(marks_at(url), False, before_epoch)) == MarkCheck()

    now = [time.time()]
    marks = marks_at(url, ttl=60, clock=lambda: now[0])

    async def long_after() -> MarkCheck:
        await marks.start()  # the epoch begins now
        try:
            attempt = utcnow() + timedelta(seconds=2)
            now[0] += 62  # looked at once a mark of it may have expired
            return await marks.check(7, attempt)
        finally:
            await marks.aclose()

    assert asyncio.run(long_after()) == MarkCheck()


def test_after_a_redis_restart_a_missing_mark_proves_nothing() -> None:
    """An epoch written under another run id: Redis restarted since, and may
    have lost marks; the epoch begins again."""
    url = redis_url_or_skip()

    now = [time.time()]
    marks = marks_at(url, clock=lambda: now[0])

    async def restarted() -> tuple[MarkCheck, MarkCheck]:
        await marks.start()  # the epoch begins now
        try:
            attempt = datetime.utcfromtimestamp(now[0] + 2)
            await marks._redis.set(marks._epoch_key, "another-run-id 0.0")  # noqa: SLF001
            now[0] += 4  # the restart is noticed after the attempt started
            first = await marks.check(7, attempt)
            now[0] += 4
            later = await marks.check(7, datetime.utcfromtimestamp(now[0] - 1))
            return first, later
        finally:
            await marks.aclose()

    first, later = asyncio.run(restarted())
    assert first == MarkCheck(), "a mark lost in the restart counted as never sent"
    assert later == MarkCheck(never_left=True), "the new epoch was not begun"


def test_without_redis_nothing_is_marked_nor_proven() -> None:
    async def down() -> tuple[bool, MarkCheck]:
        marks = SendMarks(NOWHERE)
        await marks.start()  # logged, not raised
        try:
            return await marks.mark(7, utcnow()), await marks.check(7, utcnow())
        finally:
            await marks.aclose()

    assert asyncio.run(down()) == (False, MarkCheck())


# --- a gateway with the real Telegram client ---------------------------------


@pytest.fixture
def telegram_api() -> Iterator[FakeTelegramApi]:
    api = FakeTelegramApi(token=unique_bot_token(), same_port=True).start()
    yield api
    api.stop()


def _settings(
    tmp_path: Path,
    rasa: FakeRasa,
    actions: FakeActionServer,
    api: FakeTelegramApi,
    redis_url: str,
) -> Settings:
    return make_settings(
        tmp_path,
        rasa.url,
        actions_url=actions.url,
        TELEGRAM_TOKEN=api.token,
        TELEGRAM_API_URL=api.url,
        REDIS_URL=redis_url,
    )


def _converse(client: Any, api: FakeTelegramApi) -> None:
    asked = api.person_writes(CHAT, "halo")
    post_telegram(client, telegram_update(1, CHAT, "halo", message_id=asked))


def _one_reply_through_a_death(
    settings: Settings, api: FakeTelegramApi
) -> tuple[Any, dict[str, int]]:
    """The person writes once; the reply is settled through the outbox's
    "death" (`_die_once`) and the takeover once the dead claim's 1 s lease ran
    out: its row, and the unknown-send counters on /healthz."""
    db = Db(settings.database_url)
    try:
        senders = {TELEGRAM: TelegramSender(settings, timeout=0.5)}
        options = replace(FAST, lease_seconds=1.0)
        with running(settings, options, senders=senders) as client:
            _converse(client, api)
            wait_until(lambda: _settled(db), timeout=15, what="the reply settled")
            counters = unknown_sends(client)
        [row] = db.outbox()
    finally:
        db.close()
    return row, counters


def _settled(db: Db) -> bool:
    rows = db.outbox()
    return bool(rows) and all(row.status != "pending" for row in rows)


def _die_once(monkeypatch: pytest.MonkeyPatch, method: str) -> list[int]:
    """The outbox's `method` "kills the process" once: it raises, nothing after
    it runs and the row keeps its lease and its send-started mark."""
    original = getattr(outbox_module.OutboxSender, method)
    deaths = [1]

    async def die_once(self: Any, *args: Any) -> Any:
        if deaths:
            deaths.pop()
            raise RuntimeError("the process died")
        return await original(self, *args)

    monkeypatch.setattr(outbox_module.OutboxSender, method, die_once)
    return deaths


def _chat_texts(api: FakeTelegramApi) -> list[str]:
    return [m["text"] for m in api.messages_in(CHAT)]


def test_a_reply_whose_request_never_left_is_sent_at_once(
    tmp_path: Path,
    rasa: FakeRasa,
    actions: FakeActionServer,
    telegram_api: FakeTelegramApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without its mark the takeover neither asks Telegram nor waits the 30 s a
    request may be in flight (`TelegramSender.request_in_flight`, not shortened). The
    clocks' margin is 0 here: on a fresh Redis the marks' epoch begins as this
    gateway starts, less than the usual second before the attempt."""
    monkeypatch.setattr(send_marks, "CLOCK_MARGIN", 0.0)
    settings = _settings(tmp_path, rasa, actions, telegram_api, redis_url_or_skip())
    deaths = _die_once(monkeypatch, "_send")  # before the sender ran at all
    row, counters = _one_reply_through_a_death(settings, telegram_api)
    assert not deaths, "the death was not simulated"
    assert _chat_texts(telegram_api) == ["halo", "Anda menulis: halo"]
    assert (row.status, row.reconciled) == ("sent", "resent")
    assert telegram_api.calls_to("editMessageText") == [], "Telegram was asked"
    assert counters["unknown"] == 1 and counters["resent"] == 1


@pytest.mark.parametrize("mark", ["set", "refused"])
def test_a_reply_that_arrived_before_a_crash_is_looked_up_not_resent(
    tmp_path: Path,
    rasa: FakeRasa,
    actions: FakeActionServer,
    telegram_api: FakeTelegramApi,
    monkeypatch: pytest.MonkeyPatch,
    mark: str,
) -> None:
    """Its mark says it left (or Redis refused the mark, and the row says it may
    have left: Redis answers again at the takeover): Telegram is asked, and the
    reply found there is not sent again."""
    monkeypatch.setattr(send_marks, "CLOCK_MARGIN", 0.0)  # as above
    if mark == "refused":

        async def refused(*args: Any) -> bool:
            return False

        monkeypatch.setattr(SendMarks, "mark", refused)
    settings = _settings(tmp_path, rasa, actions, telegram_api, redis_url_or_skip())
    deaths = _die_once(monkeypatch, "_finish")  # after Telegram had it
    row, counters = _one_reply_through_a_death(settings, telegram_api)
    assert not deaths, "the death was not simulated"
    assert _chat_texts(telegram_api) == ["halo", "Anda menulis: halo"]
    assert (row.status, row.reconciled) == ("sent", "found")
    assert len(telegram_api.calls_to("sendMessage")) == 1
    assert counters["unknown"] == 1 and counters["found"] == 1


def test_with_redis_down_a_reply_is_sent_and_its_flag_cleared(
    tmp_path: Path,
    rasa: FakeRasa,
    actions: FakeActionServer,
    telegram_api: FakeTelegramApi,
) -> None:
    """No mark can be set: the row says so while the request is out, and the
    result clears it (sending goes on without Redis)."""
    settings = _settings(tmp_path, rasa, actions, telegram_api, NOWHERE)
    db = Db(settings.database_url)
    try:
        senders = {TELEGRAM: TelegramSender(settings, timeout=0.5)}
        with running(settings, senders=senders) as client:
            _converse(client, telegram_api)
            wait_until(lambda: _settled(db), timeout=15, what="the reply sent")
        [row] = db.outbox()
    finally:
        db.close()
    assert _chat_texts(telegram_api) == ["halo", "Anda menulis: halo"]
    assert (row.status, row.reconciled) == ("sent", None)
