"""The circuit breaker's state machine, driven by a fake clock."""

from __future__ import annotations

import pytest

from bot.verification.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from tests.verification.conftest import FakeClock


def make(
    clock: FakeClock, threshold: int = 3, cool_down: float = 10.0
) -> CircuitBreaker:
    return CircuitBreaker(threshold, cool_down, clock=clock)


def test_starts_closed_and_allows(clock: FakeClock) -> None:
    breaker = make(clock)
    assert breaker.state == CLOSED
    assert breaker.allow()


def test_opens_after_consecutive_failures_only(clock: FakeClock) -> None:
    breaker = make(clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state == OPEN
    assert not breaker.allow()


def test_half_open_lets_one_trial_through(clock: FakeClock) -> None:
    breaker = make(clock, threshold=1)
    breaker.record_failure()
    clock.advance(9.9)
    assert breaker.state == OPEN and not breaker.allow()
    clock.advance(0.1)
    assert breaker.state == HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # a trial is already in flight


def test_successful_trial_closes(clock: FakeClock) -> None:
    breaker = make(clock, threshold=2)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(10)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.failures == 0
    breaker.record_failure()
    assert breaker.state == CLOSED  # the count started again


def test_failed_trial_reopens_for_a_new_cool_down(clock: FakeClock) -> None:
    breaker = make(clock, threshold=2)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(10)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == OPEN
    clock.advance(9)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_abandoned_trial_is_given_up_after_a_cool_down(clock: FakeClock) -> None:
    breaker = make(clock, threshold=1)
    breaker.record_failure()
    clock.advance(10)
    assert breaker.allow()  # the trial never reports back
    clock.advance(5)
    assert not breaker.allow()
    clock.advance(5)
    assert breaker.allow()


@pytest.mark.parametrize("threshold, cool_down", [(0, 1.0), (1, 0.0)])
def test_rejects_bad_settings(threshold: int, cool_down: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold, cool_down)
