"""How far a batch's announcement is: counts per status, rate, expected finish.

The counts are one aggregate over the batch's rows (an index-only scan). The
rate is measured by whoever asks (the console), from its own earlier looks
at the same batch over the last `window` seconds: nothing is written per
message to measure it. The first look has no rate yet.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.selection.announcements import message_counts
from bot.selection.delivery import paused_at
from bot.selection.models import (
    MESSAGE_DELIVERED,
    MESSAGE_FAILED,
    MESSAGE_PENDING,
    MESSAGE_QUEUED,
    MESSAGE_SENT,
    MESSAGE_SKIPPED,
)

WINDOW = 60.0
"""Seconds of earlier looks the rate is measured over."""


@dataclass(frozen=True)
class Progress:
    """One look at a batch's announcement."""

    total: int
    sent: int
    delivered: int
    failed: int
    skipped: int
    remaining: int
    """Pending or handed to the outbox and not sent yet."""
    paused: bool
    rate: float | None
    """Messages finished a second over the last minute (None: not known yet)."""
    finish: datetime | None
    """Expected finish (naive UTC) at that rate; None when unknown or done."""

    @property
    def done(self) -> int:
        """Messages finished one way or another."""
        return self.total - self.remaining

    def as_json(self) -> dict[str, object]:
        """For the console's live page."""
        return {
            "total": self.total,
            "sent": self.sent,
            "delivered": self.delivered,
            "failed": self.failed,
            "skipped": self.skipped,
            "remaining": self.remaining,
            "paused": self.paused,
            "rate": None if self.rate is None else round(self.rate, 1),
            "finish": None if self.finish is None else self.finish.isoformat(),
        }


class ProgressMeter:
    """Looks at batches and remembers the looks, for the rate (thread-safe)."""

    def __init__(
        self, window: float = WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window
        self._clock = clock
        self._looks: dict[int, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def _rate(self, batch_id: int, done: int) -> float | None:
        now = self._clock()
        with self._lock:
            looks = self._looks.setdefault(batch_id, deque())
            looks.append((now, done))
            while len(looks) > 2 and now - looks[1][0] >= self._window:
                looks.popleft()
            first_at, first_done = looks[0]
        elapsed = now - first_at
        if elapsed < 1.0:
            return None
        return max(0, done - first_done) / elapsed

    def look(self, session: Session, batch_id: int, now: datetime) -> Progress:
        """The batch's progress now."""
        counts = message_counts(session, batch_id)
        remaining = counts.get(MESSAGE_PENDING, 0) + counts.get(MESSAGE_QUEUED, 0)
        total = sum(counts.values())
        rate = self._rate(batch_id, total - remaining)
        finish = None
        if remaining and rate:
            finish = now + timedelta(seconds=remaining / rate)
        return Progress(
            total=total,
            sent=counts.get(MESSAGE_SENT, 0),
            delivered=counts.get(MESSAGE_DELIVERED, 0),
            failed=counts.get(MESSAGE_FAILED, 0),
            skipped=counts.get(MESSAGE_SKIPPED, 0),
            remaining=remaining,
            paused=paused_at(session, batch_id) is not None,
            rate=rate,
            finish=finish,
        )
