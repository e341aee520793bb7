"""A process's heartbeat written by a thread of its own, for a process without
the gateway's loops: the action server, whose code mails are claimed in its
name (`bot.notify.queue`). While its row in `gateway_process` is fresh its
claims are its own; once the process is killed, its row goes stale within the
heartbeat timeout and the gateway's mail sweep (or the repeated turn) takes its
mail over. A clean exit retires the row, which frees them at once.

A thread, not a task of the process's event loop: the beat goes on while an
action blocks the loop, and the action server's loop (Sanic's) is not ours.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from bot import leases
from bot.db import utcnow
from bot.loops import describe_error

log = logging.getLogger(__name__)

class ThreadHeartbeat:
    """Registers `owner` on `start`, beats every `interval` until `stop`."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        owner: str,
        interval: float = leases.HEARTBEAT_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.owner = owner
        self._sessions = sessions
        self._interval = interval
        self._clock = clock
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Record the process as alive (blocking), then beat in a daemon thread.
        A failed first write is logged, not raised: the beats write the row
        (until one does, this process's claims last their backstop)."""
        self._beat()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self._beat()

    def _beat(self) -> None:
        try:
            with self._sessions() as session, session.begin():
                leases.beat(session, self.owner, self._clock())  # or registers
        except Exception as exc:  # noqa: BLE001 (the next beat tries again)
            log.warning("heartbeat not written: %s", describe_error(exc))

    def stop(self) -> None:
        """Stop beating and retire the row: what the process holds is free now."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            with self._sessions() as session, session.begin():
                leases.retire(session, self.owner)
        except Exception as exc:  # noqa: BLE001 (its claims then run out)
            log.warning("heartbeat not retired: %s", describe_error(exc))
