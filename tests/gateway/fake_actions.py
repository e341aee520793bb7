"""A local fake of the action server's health endpoint (GET /health).

Runs under uvicorn in a background thread on a free 127.0.0.1 port. `down()` stops
listening (connections refused), `up()` listens again on the same port, and
`fail_with(503)` answers the health check with an error status instead.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class FakeActionServer:
    """The action server's /health, switchable down and up, counting checks."""

    def __init__(self) -> None:
        self._status: int | None = None
        self._lock = threading.Lock()
        self._checks = 0
        self._port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(routes=[Route("/health", self._health, methods=["GET"])])

    @property
    def url(self) -> str:
        """Base URL, like http://localhost:5055."""
        if not self._port:
            raise RuntimeError("FakeActionServer is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def checks(self) -> int:
        """Health checks answered so far (any status)."""
        with self._lock:
            return self._checks

    def start(self) -> FakeActionServer:
        """Serve on a free port (the same one again after `down`); returns self."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("FakeActionServer did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop listening and wait for the server thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

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
