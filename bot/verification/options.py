"""Tuning of the NIK check queue; the defaults suit production, tests shorten them."""

from __future__ import annotations

from dataclasses import dataclass

from bot.loops import SHUTDOWN_MARGIN


@dataclass(frozen=True)
class NikCheckOptions:
    """Tuning of the NIK check queue the gateway runs (`NikCheckRunner`)."""

    concurrency: int = 8
    """NIK checks in flight at once in this process."""
    poll_interval: float = 1.0
    """Seconds between looks for due jobs (retries fall due with time)."""
    timeout: float = 20.0
    """Limit on one check, the verifier's own retries included."""
    lease_seconds: float = 60.0
    """How long a claimed job stays ours; must outlast a check."""
    backoff_base: float = 5.0
    backoff_cap: float = 600.0
    max_attempts: int = 12
    """Claims of one job before an unavailable verifier fails it for good."""

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_attempts < 1:
            raise ValueError("NIK check concurrency and max_attempts must be >= 1")
        if self.lease_seconds < self.timeout + SHUTDOWN_MARGIN:
            raise ValueError(
                "NIK check lease_seconds must be at least timeout + "
                f"{SHUTDOWN_MARGIN:g} s, so no other worker takes a running check"
            )
