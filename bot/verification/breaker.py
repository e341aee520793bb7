"""A circuit breaker: stop calling a failing service for a while.

closed --N consecutive failures--> open --cool-down--> half-open (one trial)
half-open --trial succeeds--> closed; --trial fails--> open again.
The clock is injectable so tests need not sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures; not thread-safe (one event loop)."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """failure_threshold: failures in a row that open the circuit;
        reset_timeout: seconds it stays open before one trial is let through."""
        if failure_threshold < 1 or reset_timeout <= 0:
            raise ValueError("failure_threshold >= 1 and reset_timeout > 0 needed")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_started: float | None = None

    @property
    def state(self) -> str:
        """The state: closed, open, or half_open once the cool-down has passed."""
        if self._opened_at is None:
            return CLOSED
        if self._clock() - self._opened_at >= self.reset_timeout:
            return HALF_OPEN
        return OPEN

    @property
    def failures(self) -> int:
        """Consecutive failures recorded since the last success."""
        return self._failures

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open, only one trial at a time.

        A trial whose outcome is never recorded (a cancelled call) is given up
        after another cool-down, so the breaker cannot stay stuck.
        """
        state = self.state
        if state == CLOSED:
            return True
        if state == OPEN:
            return False
        now = self._clock()
        if (
            self._trial_started is not None
            and now - self._trial_started < self.reset_timeout
        ):
            return False
        self._trial_started = now
        return True

    def record_success(self) -> None:
        """The service answered: close the circuit."""
        self._failures = 0
        self._opened_at = None
        self._trial_started = None

    def record_failure(self) -> None:
        """The service failed: open after the threshold, or at once when half-open."""
        self._failures += 1
        if self._opened_at is not None or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._trial_started = None
