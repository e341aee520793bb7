"""Serve an ASGI app with uvicorn in a background thread on a free 127.0.0.1 port.

The base of the local fakes (Rasa, the action server, Telegram, Twilio):

    server = BackgroundServer(app, name="FakeThing").start()
    ... server.url ...
    server.stop()

or `with BackgroundServer(app) as server: ...`. A fake subclasses it and passes
its Starlette app to `__init__`; `start()` returns the fake itself.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, TypeVar

import uvicorn
from uvicorn.config import LifespanType

_Server = TypeVar("_Server", bound="BackgroundServer")

START_TIMEOUT = 10.0  # seconds to wait for the server to accept connections
STOP_TIMEOUT = 10.0  # seconds to wait for the server thread to end


class BackgroundServer:
    """An ASGI app served by uvicorn in a daemon thread on 127.0.0.1."""

    def __init__(
        self,
        app: Any,
        *,
        name: str = "BackgroundServer",
        same_port: bool = False,
        lifespan: LifespanType = "off",
        access_log: bool = False,
        force_exit: bool = False,
    ) -> None:
        """name: used in errors. same_port: a restart (start after stop) listens
        on the port of the first start, else on a new free port. force_exit:
        stop() does not wait for requests still being answered."""
        self.app = app
        self._name = name
        self._same_port = same_port
        self._lifespan = lifespan
        self._access_log = access_log
        self._force_exit = force_exit
        self._port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port served on (0 before the first start)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL, like http://127.0.0.1:PORT."""
        if not self._port:
            raise RuntimeError(f"{self._name} is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self: _Server, port: int = 0) -> _Server:
        """Serve in a background thread; returns self once it accepts connections.
        port: listen there (else a free port, or the first start's: same_port)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port or (self._port if self._same_port else 0)))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=self._access_log,
            lifespan=self._lifespan,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self._name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread."""
        if self._server is not None:
            self._server.should_exit = True
            if self._force_exit:
                self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT)
        self._server = self._thread = None

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
