"""This process's heartbeat: one row in `gateway_process`, written about every second.

While the row is fresh, the leases this process holds (conversations, replies,
NIK checks) are its own; once it is older than `heartbeat_timeout` (the process
was killed, or is paused), other processes take them over (`bot.leases`). The
gateway registers before its loops claim anything, keeps beating while they
drain at stop, and retires the row last, which frees what is left at once (and
announces it, `bot.gateway.wakeups`). Long silent rows are purged now and then.

Each beat also reads which other processes are alive and when each beat last.
When one that was alive is not any more (killed, paused, retired),
`on_peer_lost` wakes this process's loops, so its work is taken over now rather
than at the next poll. A peer whose heartbeat would go stale before this
process's next beat is looked at again at that very moment (one SELECT, only
when a peer is late), so a takeover starts `heartbeat_timeout` after the dead
process's last beat, not up to one interval later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot import leases
from bot.db import utcnow
from bot.gateway.wakeups import PROCESSES, announce
from bot.loops import describe_error, in_thread

log = logging.getLogger(__name__)

PURGE_AFTER = timedelta(days=1)
"""Rows silent this long are forgotten (every lease has run out by then)."""
PURGE_EVERY = 600
"""Beats between purges."""
STALE_MARGIN = 0.05
"""Seconds after a peer's heartbeat goes stale that it is looked at again."""


class Heartbeat:
    """Writes this process's heartbeat until stopped; create it inside the loop."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        owner: str,
        interval: float,
        timeout: float,
        clock: Callable[[], datetime] = utcnow,
        on_peer_lost: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._owner = owner
        self._interval = interval
        self._timeout = timeout
        self._clock = clock
        self._stop = asyncio.Event()
        self._last = clock()
        self._beats = 0
        self._peers: set[str] = set()
        self._on_peer_lost = on_peer_lost
        self._peer_due: float | None = None
        """time.monotonic() when the first live peer's heartbeat goes stale."""

    def register(self) -> None:
        """Record this process as alive (blocking: call it in a thread)."""
        now = self._clock()
        with self._sessions() as session:
            leases.register(session, self._owner, now)
            session.commit()
        self._last = now

    def beat(self) -> bool:
        """Refresh the heartbeat, now and then purge dead rows (blocking); True
        when a process alive before is not any more."""
        now = self._clock()
        late = (now - self._last).total_seconds()
        with self._sessions() as session:
            leases.beat(session, self._owner, now)
            self._beats += 1
            if self._beats % PURGE_EVERY == 0:
                leases.purge(session, now - PURGE_AFTER)
            alive = leases.live_heartbeats(session, now, self._timeout)
            session.commit()
        self._last = now
        if late > self._timeout:
            log.warning(
                "heartbeat %.1fs late: other processes may have taken over this "
                "process's work (its late writes are refused)",
                late,
            )
        return self._peers_seen(alive, now)

    def check_peers(self) -> bool:
        """Read the peers' heartbeats again (blocking); True when one went stale."""
        now = self._clock()
        with self._sessions() as session:
            alive = leases.live_heartbeats(session, now, self._timeout)
        return self._peers_seen(alive, now)

    def _peers_seen(self, alive: dict[str, datetime], now: datetime) -> bool:
        alive.pop(self._owner, None)
        lost = bool(self._peers - alive.keys())
        self._peers = set(alive)
        self._peer_due = None
        if alive:
            stale_in = (min(alive.values()) - now).total_seconds() + self._timeout
            self._peer_due = time.monotonic() + max(stale_in, 0.0) + STALE_MARGIN
        return lost

    def retire(self) -> None:
        """A clean stop: what this process still holds is free at once (blocking)."""
        with self._sessions() as session:
            leases.retire(session, self._owner)
            announce(session, PROCESSES)
            session.commit()

    def stop(self) -> None:
        """End `run` after the current beat."""
        self._stop.set()

    async def run(self) -> None:
        """Beat every `interval` seconds until stopped (and look at a late peer
        when its heartbeat goes stale); errors are logged, and the next beat
        tries again."""
        next_beat = time.monotonic()
        while not self._stop.is_set():
            lost = False
            try:
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self._interval
                    lost = await in_thread(self.beat)
                elif self._peer_due is not None and time.monotonic() >= self._peer_due:
                    lost = await in_thread(self.check_peers)
            except Exception as exc:
                self._peer_due = None  # looked at again at the next beat
                log.error("heartbeat not written: %s", describe_error(exc))
            if lost:
                self._on_peer_lost()
            wake = next_beat
            if self._peer_due is not None:
                wake = min(wake, self._peer_due)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._stop.wait(), timeout=max(0.0, wake - time.monotonic())
                )
