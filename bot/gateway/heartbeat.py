"""This process's heartbeat: one row in `gateway_process`, written about every second.

While the row is fresh, the leases this process holds (conversations, replies,
NIK checks) are its own; once it is older than `heartbeat_timeout` (the process
was killed, or is paused), other processes take them over (`bot.leases`). The
gateway registers before its loops claim anything, keeps beating while they
drain at stop, and retires the row last, which frees what is left at once. Long
silent rows are purged now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot import leases
from bot.db import utcnow
from bot.gateway.pool import describe_error, in_thread

log = logging.getLogger(__name__)

PURGE_AFTER = timedelta(days=1)
"""Rows silent this long are forgotten (every lease has run out by then)."""
PURGE_EVERY = 600
"""Beats between purges."""


class Heartbeat:
    """Writes this process's heartbeat until stopped; create it inside the loop."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        owner: str,
        interval: float,
        timeout: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._owner = owner
        self._interval = interval
        self._timeout = timeout
        self._clock = clock
        self._stop = asyncio.Event()
        self._last = clock()
        self._beats = 0

    def register(self) -> None:
        """Record this process as alive (blocking: call it in a thread)."""
        now = self._clock()
        with self._sessions() as session:
            leases.register(session, self._owner, now)
            session.commit()
        self._last = now

    def beat(self) -> None:
        """Refresh the heartbeat, now and then purge dead rows (blocking)."""
        now = self._clock()
        late = (now - self._last).total_seconds()
        with self._sessions() as session:
            leases.beat(session, self._owner, now)
            self._beats += 1
            if self._beats % PURGE_EVERY == 0:
                leases.purge(session, now - PURGE_AFTER)
            session.commit()
        self._last = now
        if late > self._timeout:
            log.warning(
                "heartbeat %.1fs late: other processes may have taken over this "
                "process's work (its late writes are refused)",
                late,
            )

    def retire(self) -> None:
        """A clean stop: what this process still holds is free at once (blocking)."""
        with self._sessions() as session:
            leases.retire(session, self._owner)
            session.commit()

    def stop(self) -> None:
        """End `run` after the current beat."""
        self._stop.set()

    async def run(self) -> None:
        """Beat every `interval` seconds until stopped; errors are logged, and the
        next beat tries again."""
        while not self._stop.is_set():
            try:
                await in_thread(self.beat)
            except Exception as exc:
                log.error("heartbeat not written: %s", describe_error(exc))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval)
