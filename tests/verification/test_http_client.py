"""HttpNikVerifier against a local fake Dukcapil service."""

from __future__ import annotations

import logging
import socket

import pytest

from bot.verification.breaker import CLOSED, OPEN, CircuitBreaker
from bot.verification.http_client import HttpNikVerifier
from bot.verification.nik import REASONS, NikRequest
from bot.verification.population import TEST_PEOPLE, TestPerson
from tests.verification.conftest import COOL_DOWN, FakeClock, SleepRecorder
from tests.verification.fake_dukcapil import GARBAGE, TIMEOUT, FakeDukcapil

BUDI = TEST_PEOPLE[0]
assert BUDI.outcome == "verified"


async def test_success_sends_the_documented_payload(
    verifier: HttpNikVerifier, dukcapil: FakeDukcapil, sleeps: SleepRecorder
) -> None:
    result = await verifier.verify(BUDI.request())
    assert result.outcome == "verified" and result.verified
    assert not result.retryable
    assert dukcapil.calls == [
        {
            "nik": BUDI.nik,
            "kk_number": BUDI.kk_number,
            "name": BUDI.full_name,
            "birth_date": BUDI.birth_date.isoformat(),
        }
    ]
    assert sleeps.delays == []


@pytest.mark.parametrize("person", TEST_PEOPLE, ids=lambda p: p.outcome)
async def test_each_status_maps_to_its_outcome(
    verifier: HttpNikVerifier, person: TestPerson
) -> None:
    result = await verifier.verify(person.request())
    assert result.outcome == person.outcome
    assert result.reason == REASONS[person.outcome]
    assert not result.retryable


async def test_timeout_then_success_retries(
    verifier: HttpNikVerifier, dukcapil: FakeDukcapil, sleeps: SleepRecorder
) -> None:
    dukcapil.fail_next(TIMEOUT)
    result = await verifier.verify(BUDI.request())
    assert result.outcome == "verified"
    assert dukcapil.call_count == 2
    assert len(sleeps.delays) == 1


async def test_server_errors_on_every_attempt_give_unavailable(
    verifier: HttpNikVerifier, dukcapil: FakeDukcapil, sleeps: SleepRecorder
) -> None:
    dukcapil.fail_next(500, 502, 503)
    result = await verifier.verify(BUDI.request())
    assert result.outcome == "unavailable"
    assert result.retryable
    assert result.reason == REASONS["unavailable"]
    assert dukcapil.call_count == 3
    first, second = sleeps.delays  # exponential backoff with jitter
    assert 0.005 <= first <= 0.01
    assert 0.01 <= second <= 0.02


async def test_429_is_retried_after_retry_after(
    verifier: HttpNikVerifier, dukcapil: FakeDukcapil, sleeps: SleepRecorder
) -> None:
    dukcapil.fail_next(429)
    result = await verifier.verify(BUDI.request())
    assert result.outcome == "verified"
    assert dukcapil.call_count == 2
    assert sleeps.delays[0] >= 0.05


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_client_errors_are_not_retried(
    verifier: HttpNikVerifier,
    dukcapil: FakeDukcapil,
    sleeps: SleepRecorder,
    breaker: CircuitBreaker,
    status: int,
) -> None:
    dukcapil.fail_next(status, status, status)
    result = await verifier.verify(BUDI.request())
    assert result.outcome == "unavailable"
    assert not result.retryable
    assert dukcapil.call_count == 1
    assert sleeps.delays == []
    assert breaker.failures == 0


async def test_unreadable_answer_is_not_retried(
    verifier: HttpNikVerifier, dukcapil: FakeDukcapil
) -> None:
    dukcapil.fail_next(GARBAGE)
    result = await verifier.verify(BUDI.request())
    assert (result.outcome, result.retryable) == ("unavailable", False)
    assert dukcapil.call_count == 1


async def test_connection_refused_gives_unavailable(
    breaker: CircuitBreaker, sleeps: SleepRecorder
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with HttpNikVerifier(
        f"http://127.0.0.1:{port}", timeout=0.2, breaker=breaker, sleep=sleeps
    ) as verifier:
        result = await verifier.verify(BUDI.request())
    assert (result.outcome, result.retryable) == ("unavailable", True)
    assert len(sleeps.delays) == 2


async def test_open_circuit_makes_no_request(
    verifier: HttpNikVerifier, dukcapil: FakeDukcapil, breaker: CircuitBreaker
) -> None:
    dukcapil.fail_next(500, 500, 500)
    await verifier.verify(BUDI.request())
    assert breaker.state == OPEN
    result = await verifier.verify(BUDI.request())
    assert (result.outcome, result.retryable) == ("unavailable", True)
    assert dukcapil.call_count == 3


async def test_half_open_trial_recovers(
    verifier: HttpNikVerifier,
    dukcapil: FakeDukcapil,
    breaker: CircuitBreaker,
    clock: FakeClock,
) -> None:
    dukcapil.fail_next(500, 500, 500)
    await verifier.verify(BUDI.request())
    clock.advance(COOL_DOWN)
    result = await verifier.verify(BUDI.request())
    assert result.outcome == "verified"
    assert breaker.state == CLOSED
    assert dukcapil.call_count == 4


async def test_failed_half_open_trial_reopens_without_retrying(
    verifier: HttpNikVerifier,
    dukcapil: FakeDukcapil,
    breaker: CircuitBreaker,
    clock: FakeClock,
) -> None:
    dukcapil.fail_next(500, 500, 500, 500)
    await verifier.verify(BUDI.request())
    clock.advance(COOL_DOWN)
    result = await verifier.verify(BUDI.request())
    assert result.outcome == "unavailable"
    assert breaker.state == OPEN
    assert dukcapil.call_count == 4


async def test_nik_never_logged_in_clear(
    verifier: HttpNikVerifier,
    dukcapil: FakeDukcapil,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    dukcapil.fail_next(TIMEOUT, 500, 400, GARBAGE)
    await verifier.verify(BUDI.request())  # timeout, 500, 400
    await verifier.verify(BUDI.request())  # garbage
    for person in TEST_PEOPLE:
        await verifier.verify(person.request())
    dukcapil.fail_next(500, 500, 500)
    await verifier.verify(BUDI.request())  # opens the circuit
    await verifier.verify(BUDI.request())  # short-circuited
    text = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    assert "3174********0001" in text
    for person in TEST_PEOPLE:
        assert person.nik not in text
        assert person.kk_number not in text


def test_rejects_zero_attempts() -> None:
    with pytest.raises(ValueError):
        HttpNikVerifier("http://127.0.0.1:1", max_attempts=0)


def test_request_type_is_frozen() -> None:
    request = NikRequest(BUDI.nik, BUDI.kk_number, BUDI.full_name, BUDI.birth_date)
    with pytest.raises(AttributeError):
        request.nik = "x"  # type: ignore[misc]
