"""Tuning of the gateway's loops; the defaults suit production, tests shorten them."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class GatewayOptions:
    """Intervals, leases, timeouts, retries and concurrency of the gateway."""

    poll_interval: float = 0.5
    lease_seconds: float = 120.0
    worker_concurrency: int = 16
    rasa_timeout: float = 30.0
    rasa_backoff_base: float = 1.0
    rasa_backoff_cap: float = 60.0
    outbox_concurrency: int = 16
    send_timeout: float = 30.0
    send_backoff_base: float = 2.0
    send_backoff_cap: float = 600.0
    max_send_attempts: int = 8
    shutdown_grace: float = 10.0
    simulator: bool | None = None
    """Serve /simulator: None means only in development."""


def backoff(attempt: int, base: float, cap: float, jitter: float = 0.25) -> float:
    """Exponential delay for the `attempt`-th failure (1, 2, ...), capped, jittered.

    The jitter takes off up to `jitter` of the delay, so retries of many messages
    that failed together spread out instead of arriving together.
    """
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay * (1 - jitter * random.random())  # noqa: S311
