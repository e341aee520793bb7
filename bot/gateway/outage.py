"""Outages of Rasa or the action server, as the turn pipeline meets them.

After a failed turn, `Outage.down` probes both: when either does not answer,
the turn was cut off by an outage, not by the message, so it waits without
counting an attempt (safe: the repeated turn replays by its idempotency key).
While conversations wait for an outage, one watch per process probes both every
`PROBE_INTERVAL` seconds; once both answer, `on_back` runs (the pipeline ends
the loop's pause and makes the conversations that waited due at once, instead
of at the end of their backoff, up to `rasa_backoff_cap`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from bot.gateway.health import ActionServerHealth
from bot.gateway.rasa_client import RasaClient, RasaUnavailableError

log = logging.getLogger(__name__)

PROBE_INTERVAL = 0.5
"""Seconds between probes of Rasa and the action server while they are down."""


class TaskHost(Protocol):
    """Where the watch runs: the claim loop (`bot.loops.ClaimLoop`), which
    drains its tasks when it stops."""

    @property
    def stopping(self) -> bool:
        """The loop is stopping."""

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` as one of the loop's tasks."""


class Outage:
    """Probe Rasa and the action server; watch them while work waits."""

    def __init__(
        self,
        rasa: RasaClient,
        actions: ActionServerHealth | None,
        host: TaskHost,
        on_back: Callable[[], Awaitable[None]],
    ) -> None:
        self._rasa = rasa
        self._actions = actions
        self._host = host
        self._on_back = on_back
        self._watch: asyncio.Task[None] | None = None

    async def down(self) -> str | None:
        """What does not answer now (Rasa or the action server), or None when
        both do."""
        if not await self._rasa.reachable():
            return "Rasa does not answer"
        if self._actions is not None:
            try:
                await self._actions.check()
            except RasaUnavailableError as exc:
                return str(exc)
        return None

    def watch(self) -> None:
        """Start the watch, unless one runs already."""
        if self._watch is None or self._watch.done():
            self._watch = self._host.spawn(self._until_back())

    async def _until_back(self) -> None:
        while not self._host.stopping:
            await asyncio.sleep(PROBE_INTERVAL)
            if self._actions is not None:
                self._actions.forget()  # probe it again, not its cached answer
            if await self.down() is None:
                log.info("Rasa and the action server answer again")
                await self._on_back()
                return
