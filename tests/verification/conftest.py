"""Fixtures: one fake Dukcapil per module, a fake clock, a fast HTTP verifier."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bot.verification.breaker import CircuitBreaker
from bot.verification.http_client import HttpNikVerifier
from tests.verification.fake_dukcapil import FakeDukcapil

CLIENT_TIMEOUT = 1.0
"""Long enough that a request the fake answers at once never times out on a
busy machine (at 0.2 s one did under CI, and was sent twice); the scripted
timeouts hang three times as long."""
THRESHOLD = 3
COOL_DOWN = 30.0


class FakeClock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SleepRecorder:
    """Stands in for asyncio.sleep: records delays, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture(scope="module")
def dukcapil_server() -> Iterator[FakeDukcapil]:
    with FakeDukcapil(hang=3 * CLIENT_TIMEOUT) as server:
        yield server


@pytest.fixture
def dukcapil(dukcapil_server: FakeDukcapil) -> FakeDukcapil:
    dukcapil_server.reset()
    return dukcapil_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(THRESHOLD, COOL_DOWN, clock=clock)


@pytest.fixture
async def verifier(
    dukcapil: FakeDukcapil, breaker: CircuitBreaker, sleeps: SleepRecorder
) -> AsyncIterator[HttpNikVerifier]:
    async with HttpNikVerifier(
        dukcapil.url,
        timeout=CLIENT_TIMEOUT,
        max_attempts=3,
        backoff_base=0.01,
        breaker=breaker,
        sleep=sleeps,
    ) as client:
        yield client
