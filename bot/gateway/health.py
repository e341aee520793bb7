"""Is the action server up? Checked before each Rasa turn.

When a custom action fails (the action server is down), Rasa still answers 200,
with no replies: the message would be marked done and never answered. So before
a turn the worker checks `GET {actions_url}/health`; a failure counts as Rasa
being unavailable (the message waits and is answered once it is back). A success
is trusted for a few seconds, and concurrent turns share one check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx

from bot.gateway.rasa_client import RasaUnavailableError

log = logging.getLogger(__name__)

HEALTH_PATH = "/health"


class ActionServerHealth:
    """A cached health check of Rasa's action server; create it inside the loop."""

    def __init__(
        self,
        base_url: str,
        ttl: float = 5.0,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = base_url.rstrip("/") + HEALTH_PATH
        self._ttl = ttl
        self._clock = clock
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self._healthy_until = 0.0
        self._lock = asyncio.Lock()
        self._was_down = False

    async def check(self) -> None:
        """Return when the action server answered lately; else RasaUnavailableError."""
        if self._clock() < self._healthy_until:
            return
        async with self._lock:  # one request for all the turns waiting here
            if self._clock() < self._healthy_until:
                return
            problem = await self._probe()
            if problem is not None:
                if not self._was_down:
                    log.warning("action server unavailable: %s", problem)
                self._was_down = True
                raise RasaUnavailableError(f"action server: {problem}")
            if self._was_down:
                log.info("action server is back")
            self._was_down = False
            self._healthy_until = self._clock() + self._ttl

    async def _probe(self) -> str | None:
        try:
            response = await self._client.get(self._url)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        return None

    def forget(self) -> None:
        """Check again before the next turn (e.g. after Rasa itself failed)."""
        self._healthy_until = 0.0

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
