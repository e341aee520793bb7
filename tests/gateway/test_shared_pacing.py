"""Two gateway processes on one PostgreSQL database and one Redis send to
Telegram at the bot's rate together, not each at its own (`REDIS_URL`,
`bot.channels.pacing`); counted where the requests arrive: the fake Telegram
Bot API, driven by the real python-telegram-bot client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.rasa import FakeRasa
from tests.fakes.telegram_api import FakeTelegramApi
from tests.gateway.conftest import (
    make_settings,
    post_telegram,
    running,
    telegram_update,
    wait_until,
)
from tests.gateway.fake_actions import FakeActionServer
from tests.redis_server import redis_url_or_skip, unique_bot_token

RATE = 5
"""Messages a second the bot may send (TELEGRAM_MESSAGES_PER_SECOND)."""
BURST = 5
"""What the overall limit lets through at once (`TELEGRAM_OVERALL_BURST`)."""
PEOPLE = 40


@pytest.fixture
def telegram_api() -> Iterator[FakeTelegramApi]:
    """A fake Bot API for a bot no other test uses (its own pacing keys)."""
    with FakeTelegramApi(token=unique_bot_token()) as api:
        yield api


def _most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(
        sum(1 for later in times if start <= later < start + 1.0) for start in times
    )


def test_two_processes_keep_the_bot_rate_together(
    tmp_path: Path,
    rasa: FakeRasa,
    actions: FakeActionServer,
    postgres_url: str,
    telegram_api: FakeTelegramApi,
) -> None:
    settings = make_settings(
        tmp_path,
        rasa.url,
        database_url=postgres_url,
        actions_url=actions.url,
        TELEGRAM_TOKEN=telegram_api.token,
        TELEGRAM_API_URL=telegram_api.url,
        TELEGRAM_MESSAGES_PER_SECOND=str(RATE),
        REDIS_URL=redis_url_or_skip(),
    )
    with running(settings) as first, running(settings) as second:
        for person in range(PEOPLE):
            client = first if person % 2 else second
            update = telegram_update(1000 + person, 5000 + person, f"halo {person}")
            assert post_telegram(client, update).status_code == 200
        wait_until(
            lambda: len(telegram_api.calls_to("sendMessage")) >= PEOPLE,
            timeout=PEOPLE / RATE + 20,
            what="every reply sent",
        )
    sent = [
        call.at
        for call in telegram_api.calls
        if call.method == "sendMessage" and call.status == 200
    ]
    assert len(sent) == PEOPLE, "each reply once"
    span = max(sent) - min(sent)
    assert span >= (PEOPLE - BURST) / RATE * 0.9, "faster than the bot's rate"
    assert _most_in_one_second(sent) <= RATE + BURST + 1
