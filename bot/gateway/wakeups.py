"""Gateway processes wake each other: PostgreSQL LISTEN/NOTIFY.

Triggers (migration 0550) run `pg_notify('prakerja_work', <table>)` in every
transaction that inserts into `inbox_message`, `outbox_message` or
`verification_job`, whoever inserts (a gateway process, the action server, the
console). PostgreSQL delivers the notification at commit, never for a rollback,
so a woken loop always finds the row. Each gateway process listens on its own
connection (psycopg2 in autocommit, read by the event loop: no thread) and
wakes the loop that claims that table's rows; `announce` sends the same from
code (a clean stop: the leases it frees are taken at once).

While the listener is connected the loops poll only every
`listen_poll_interval`; when its connection drops they go back to
`poll_interval`, it reconnects with backoff, and then wakes every loop, since
what was notified meanwhile is lost. SQLite has one process, whose loops are
woken in-process as before: nothing is listened to there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.loops import ClaimLoop, backoff, describe_error, in_thread

log = logging.getLogger(__name__)

CHANNEL = "prakerja_work"
INBOX = "inbox_message"
OUTBOX = "outbox_message"
NIK_CHECKS = "verification_job"
PROCESSES = "gateway_process"
"""A process stopped cleanly: what it held is free, every loop should look."""
CONNECT_TIMEOUT = 5
RECONNECT_BASE, RECONNECT_CAP = 0.5, 10.0
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
"""A silently dead connection is noticed in about 25 s (polling covers it)."""

Wake = Callable[[], None]


def announce(session: Any, topic: str) -> None:
    """Wake the listening processes' loops for `topic` when `session` (a Session
    or Connection) commits; nothing on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:channel, :topic)"),
            {"channel": CHANNEL, "topic": topic},
        )


class Wakeups:
    """This process's listener: notifications by topic to the loops' wakeups."""

    def __init__(self, engine: Engine, listen_poll_interval: float) -> None:
        self._engine = engine
        self._listen_poll = listen_poll_interval
        self._subscribers: dict[str, list[Wake]] = defaultdict(list)
        self._loops: list[tuple[ClaimLoop[Any], float]] = []
        self._listening = False
        self._stop = asyncio.Event()
        self.notifications = 0
        """Notifications received (for tests and logs)."""

    @property
    def enabled(self) -> bool:
        """Whether this database can notify (PostgreSQL)."""
        return self._engine.dialect.name == "postgresql"

    @property
    def listening(self) -> bool:
        """The listener is connected: other processes' work wakes this one."""
        return self._listening

    @property
    def state(self) -> str:
        """For /healthz: "listening", "polling" (the listener is reconnecting)
        or "in-process" (SQLite)."""
        if not self.enabled:
            return "in-process"
        return "listening" if self._listening else "polling"

    def subscribe(self, topic: str, wake: Wake) -> None:
        """Call `wake` when `topic` is notified (and when every loop is woken)."""
        self._subscribers[topic].append(wake)

    def attach(self, loop: ClaimLoop[Any], *topics: str, relax: bool = True) -> None:
        """Wake `loop` for `topics`; with `relax`, let it poll only every
        `listen_poll_interval` while the listener is connected."""
        for topic in topics:
            self.subscribe(topic, loop.notify)
        self._loops.append((loop, loop.poll_interval if relax else 0.0))

    def wake_all(self) -> None:
        """Wake every subscriber (a reconnect, a process gone)."""
        for wakes in list(self._subscribers.values()):
            for wake in wakes:
                wake()

    def stop(self) -> None:
        """End `run`."""
        self._stop.set()

    def _set_listening(self, listening: bool) -> None:
        self._listening = listening
        for loop, own in self._loops:
            if own > 0:
                loop.poll_every(max(own, self._listen_poll) if listening else own)

    def _dispatch(self, topics: set[str]) -> None:
        if PROCESSES in topics:
            self.wake_all()
            return
        for topic in topics:
            for wake in self._subscribers.get(topic, ()):
                wake()

    def _connect(self) -> Any:
        """A connection of its own, LISTENing (blocking: run it in a thread)."""
        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        kwargs = {**KEEPALIVES, "connect_timeout": CONNECT_TIMEOUT, **kwargs}
        connection = self._engine.dialect.dbapi.connect(*args, **kwargs)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
        except Exception:
            connection.close()
            raise
        return connection

    async def run(self) -> None:
        """Listen until stopped, reconnecting with backoff (PostgreSQL only)."""
        if not self.enabled:
            return
        failures = 0
        while not self._stop.is_set():
            try:
                connection = await in_thread(self._connect)
            except Exception as exc:
                failures += 1
                log.warning(
                    "wakeups: cannot listen (%s), polling meanwhile",
                    describe_error(exc),
                )
                await self._pause(backoff(failures, RECONNECT_BASE, RECONNECT_CAP))
                continue
            failures = 0
            try:
                await self._listen(connection)
            finally:
                self._set_listening(False)
                with contextlib.suppress(Exception):
                    connection.close()
            await self._pause(RECONNECT_BASE)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def _listen(self, connection: Any) -> None:
        """Read notifications as they arrive until stopped or disconnected."""
        loop = asyncio.get_running_loop()
        lost = asyncio.Event()

        def readable() -> None:
            try:
                connection.poll()
            except Exception as exc:
                log.warning("wakeups: listener disconnected (%s)", describe_error(exc))
                lost.set()
                return
            if connection.notifies:
                topics = {notify.payload for notify in connection.notifies}
                self.notifications += len(connection.notifies)
                connection.notifies.clear()
                self._dispatch(topics)

        descriptor = connection.fileno()
        loop.add_reader(descriptor, readable)
        try:
            self._set_listening(True)
            self.wake_all()  # what was stored while nobody listened
            stopped = asyncio.ensure_future(self._stop.wait())
            gone = asyncio.ensure_future(lost.wait())
            try:
                await asyncio.wait({stopped, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                gone.cancel()
        finally:
            loop.remove_reader(descriptor)
