"""Provider pacing shared by every gateway process through Redis
(`bot.channels.pacing`): two limiters on two connections stand for two
processes. Each test uses keys of its own on the shared test Redis."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from bot.channels.base import SendResult
from bot.channels.pacing import PACED, PacingStore, SharedRateLimiter
from bot.channels.sms import TwilioSender
from bot.settings import load_settings
from tests.fakes.twilio_api import FakeTwilioApi
from tests.redis_server import redis_url_or_skip, unique_number


@pytest.fixture
async def stores() -> AsyncIterator[tuple[PacingStore, PacingStore]]:
    """Two connections to the test Redis, as two processes would have."""
    url = redis_url_or_skip()
    first, second = PacingStore(url), PacingStore(url)
    yield first, second
    await first.aclose()
    await second.aclose()


def _name() -> str:
    return f"test-{uuid.uuid4().hex}"


def _most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(
        sum(1 for later in times if start <= later < start + 1.0) for start in times
    )


async def test_two_processes_share_the_overall_rate(
    stores: tuple[PacingStore, PacingStore],
) -> None:
    name = _name()
    limiters = [
        SharedRateLimiter(store, name, overall_per_second=20)
        for store in stores
    ]
    granted: list[float] = []

    async def send(limiter: SharedRateLimiter, chat: int) -> None:
        assert await limiter.wait(str(chat)) == 0.0
        granted.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(
        *(send(limiters[chat % 2], chat) for chat in range(60)),
    )
    elapsed = time.monotonic() - start
    assert len(granted) == 60
    assert elapsed >= (60 - 5) / 20 * 0.9, "two processes went at twice the rate"
    assert _most_in_one_second(granted) <= 20 + 5 + 1


async def test_one_chat_is_paced_across_processes(
    stores: tuple[PacingStore, PacingStore],
) -> None:
    name = _name()
    limiters = [SharedRateLimiter(store, name) for store in stores]
    start = time.monotonic()
    for index in range(5):  # a burst of 3, then one a second
        assert await limiters[index % 2].wait("42") == 0.0
    assert time.monotonic() - start >= 1.8


async def test_a_long_wait_is_handed_back(
    stores: tuple[PacingStore, PacingStore],
) -> None:
    name = _name()
    first = SharedRateLimiter(stores[0], name, overall_per_second=1, overall_burst=1)
    second = SharedRateLimiter(stores[1], name, overall_per_second=1, overall_burst=1)
    assert await first.wait(None, max_wait=0.1) == 0.0
    started = time.monotonic()
    wait = await second.wait(None, max_wait=0.1)
    assert 0.5 < wait <= 1.0
    assert time.monotonic() - started < 0.5, "a long wait is not slept"


async def test_redis_down_paces_in_process(caplog: pytest.LogCaptureFixture) -> None:
    store = PacingStore("redis://127.0.0.1:1")  # nothing listens there
    limiter = SharedRateLimiter(store, _name(), overall_per_second=10, overall_burst=1)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.channels.pacing"):
            assert await limiter.wait(None) == 0.0
            assert await limiter.wait(None, max_wait=0.01) > 0.05
        assert "Redis" in caplog.text
    finally:
        await store.aclose()


async def test_twilio_sends_are_paced_per_sender_number(
    stores: tuple[PacingStore, PacingStore],
) -> None:
    number = unique_number()
    with FakeTwilioApi() as api:
        settings = load_settings(
            {
                "PRAKERJA_ENV": "test",
                "PSEUDONYM_KEY": "test-key",
                "PUBLIC_BASE_URL": "https://gateway.example.org",
                "TWILIO_ACCOUNT_SID": api.account_sid,
                "TWILIO_AUTH_TOKEN": api.auth_token,
                "TWILIO_FROM_NUMBER": number,
                "TWILIO_API_URL": api.url,
                "TWILIO_MESSAGES_PER_SECOND": "2",
            }
        )
        senders = [
            TwilioSender(
                settings,
                limiter=SharedRateLimiter(
                    store, f"twilio:{number}", overall_per_second=2, overall_burst=2
                ),
                max_wait=0.05,
            )
            for store in stores
        ]
        try:
            results: list[SendResult] = await asyncio.gather(
                *(
                    senders[index % 2].send(
                        f"+62812345678{index:02d}", {"kind": "sms", "text": "Halo"}
                    )
                    for index in range(6)
                )
            )
        finally:
            for sender in senders:
                await sender.close()
        sent = [result for result in results if result.ok]
        paced = [result for result in results if not result.ok]
        assert len(sent) == 2, "two processes, one number: 2 a second together"
        assert all(r.retry_after and r.error == PACED for r in paced)
        assert len(api.sent) == 2
