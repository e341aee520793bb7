"""A local fake of a Dukcapil-style NIK service for tests.

``POST /nik/verify`` answers ``{"status": <outcome>}`` as the local synthetic
population decides. It records every call and can be told to misbehave on the
next calls: hang past the client's timeout, answer an HTTP error status, or send
an unreadable body.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import date
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.verification.nik import NikRequest
from bot.verification.population import LocalPopulationVerifier
from tests.fakes.server import BackgroundServer

TIMEOUT = "timeout"  # hang for `hang` seconds before answering
GARBAGE = "garbage"  # 200 with a body that is not JSON
RETRY_AFTER = "0.05"  # seconds, sent with every 429


class FakeDukcapil(BackgroundServer):
    """The NIK verification endpoint, locally."""

    def __init__(self, hang: float = 1.0) -> None:
        self.hang = hang
        self.population = LocalPopulationVerifier(slow_delay=0.0)
        self._lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self._script: list[str | int] = []
        app = Starlette(routes=[Route("/nik/verify", self._verify, methods=["POST"])])
        super().__init__(app, name="FakeDukcapil", force_exit=True)

    def fail_next(self, *failures: str | int) -> None:
        """Misbehave on the next calls, in order: TIMEOUT, GARBAGE or a status."""
        with self._lock:
            self._script.extend(failures)

    def reset(self) -> None:
        """Forget calls and pending failures."""
        with self._lock:
            self.calls.clear()
            self._script.clear()

    @property
    def call_count(self) -> int:
        """Requests received so far."""
        with self._lock:
            return len(self.calls)

    async def _verify(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.calls.append(body)
            failure = self._script.pop(0) if self._script else None
        if failure == TIMEOUT:
            await asyncio.sleep(self.hang)
        elif failure == GARBAGE:
            return PlainTextResponse("<html>Bad gateway</html>")
        elif isinstance(failure, int):
            headers = {"Retry-After": RETRY_AFTER} if failure == 429 else None
            return JSONResponse(
                {"error": "simulated"}, status_code=failure, headers=headers
            )
        result = await self.population.verify(
            NikRequest(
                body["nik"],
                body["kk_number"],
                body["name"],
                date.fromisoformat(body["birth_date"]),
            )
        )
        return JSONResponse({"status": result.outcome})
