"""A local fake of the action server's health endpoint (GET /health).

Runs under uvicorn in a background thread on a free 127.0.0.1 port. `down()` stops
listening (connections refused), `up()` listens again on the same port, and
`fail_with(503)` answers the health check with an error status instead.
"""

from __future__ import annotations

import threading

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import BackgroundServer


class FakeActionServer(BackgroundServer):
    """The action server's /health, switchable down and up, counting checks."""

    def __init__(self) -> None:
        self._status: int | None = None
        self._lock = threading.Lock()
        self._checks = 0
        app = Starlette(routes=[Route("/health", self._health, methods=["GET"])])
        super().__init__(app, name="FakeActionServer", same_port=True)

    @property
    def checks(self) -> int:
        """Health checks answered so far (any status)."""
        with self._lock:
            return self._checks

    def down(self) -> None:
        """The action server is gone: connections to its port are refused."""
        self.stop()

    def up(self) -> None:
        """The action server is back, on the same port, healthy."""
        self._status = None
        if self._server is None:
            self.start()

    def fail_with(self, status: int | None) -> None:
        """Answer the health check with this status (None: 200)."""
        self._status = status

    async def _health(self, request: Request) -> JSONResponse:
        with self._lock:
            self._checks += 1
        if self._status is not None:
            return JSONResponse({"status": "error"}, status_code=self._status)
        return JSONResponse({"status": "ok"})
