"""The message backlog as operators see it (measured by `bot.gateway.backlog`,
shown on /healthz and on the console's supervisor page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Figures:
    """The backlog at one look, for operators."""

    measured_at: datetime | None = None
    pending: int = 0
    """Messages waiting for their turn (internal events included)."""
    conversations: int = 0
    """Conversations with messages waiting."""
    oldest_age: float | None = None
    """Seconds the oldest waiting message has waited."""
    rate: float | None = None
    """Rows answered per second while busy; None: no backlog lately."""
    expected_wait: float | None = 0.0
    """Seconds a message arriving now would wait; None: unknown (a stall)."""

    def as_json(self) -> dict[str, Any]:
        """The figures for /healthz."""

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {
            "pending": self.pending,
            "conversations": self.conversations,
            "oldest_age_seconds": rounded(self.oldest_age),
            "rate_per_second": rounded(self.rate),
            "expected_wait_seconds": rounded(self.expected_wait),
        }
