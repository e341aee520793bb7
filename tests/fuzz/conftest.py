"""The fuzz test's gateway, driven in-process, and its log capture.

One gateway app per module, on a SQLite file, with the console's cheap argon2id
parameters and its lifespan running (workers, outbox and the other loops, with
a fake Rasa, a fake action server and senders that accept everything). The app
is called through ASGI (`httpx.ASGITransport`) on one event loop owned by this
thread: no server, no second thread per request, and the loops run only while
a request or `drain` awaits. While bodies are sent the worker and the outbox
are paused (`ClaimLoop.pause`: a store still wakes them, but they claim
nothing), so the requests do not compete with them for the two CPU cores;
`drain` resumes them until they have handled everything stored, then pauses
them again.

Every log record of every logger at INFO and above is kept, formatted as a
handler would write it (tracebacks included), so the test can look for
tracebacks and personal data in it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from starlette.applications import Starlette

import bot.console.passwords as passwords
from bot.channels.base import CHANNELS
from bot.console.agents import create_agent
from bot.db import make_engine, make_sessionmaker
from bot.gateway.app import create_app
from bot.gateway.runtime import Gateway
from bot.messages.models import (
    INBOX_PENDING,
    OUTBOX_PENDING,
    InboxMessage,
    OutboxMessage,
)
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import FAST, FakeSender, make_settings
from tests.gateway.fake_actions import FakeActionServer

OPTIONS = replace(FAST, worker_concurrency=4, outbox_concurrency=4)
AGENT = "petugas"
AGENT_PASSWORD = "kata-sandi-uji-yang-panjang"
BASE_URL = "https://testserver"
PAUSE_SECONDS = 24 * 3600.0
"""Longer than any run: the loops claim nothing until `drain` resumes them."""


class LogCapture(logging.Handler):
    """Keeps every record as formatted text (with its traceback, if any)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []
        self.tracebacks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        self.lines.append(text)
        if record.exc_info or record.stack_info or "Traceback" in text:
            self.tracebacks.append(text)

    def since(self, mark: int) -> str:
        """The lines logged after `mark` (a length of `lines`), joined."""
        return "\n".join(self.lines[mark:])


class Fuzz:
    """The app on its event loop, its database and the captured logs."""

    def __init__(
        self,
        app: Starlette,
        loop: asyncio.AbstractEventLoop,
        database_url: str,
        logs: LogCapture,
    ):
        self.app = app
        self.loop = loop
        self.logs = logs
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app, raise_app_exceptions=False),
            base_url=BASE_URL,
        )
        self.engine = make_engine(database_url)
        self.sessions = make_sessionmaker(self.engine)
        self.personal: set[str] = set()
        self.sent = 0

    @property
    def gateway(self) -> Gateway:
        """The running gateway (its lifespan has started)."""
        gateway: Gateway = self.app.state.gateway
        return gateway

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the app with one request and return its answer (a 500 if the app
        raised)."""
        return self.loop.run_until_complete(self.client.request(method, path, **kwargs))

    def pause(self) -> None:
        """Keep the worker and the outbox from claiming anything."""
        self.gateway.worker.pause(PAUSE_SECONDS)
        self.gateway.outbox.pause(PAUSE_SECONDS)

    def pending(self) -> int:
        """Stored messages and replies the loops have not handled yet."""
        with self.sessions() as session:
            inbox = select(func.count(InboxMessage.id)).where(
                InboxMessage.status == INBOX_PENDING
            )
            outbox = select(func.count(OutboxMessage.id)).where(
                OutboxMessage.status == OUTBOX_PENDING
            )
            return int(session.execute(inbox).scalar_one()) + int(
                session.execute(outbox).scalar_one()
            )

    def drain(self, timeout: float) -> int:
        """Let the worker and the outbox handle what was stored (up to `timeout`
        seconds), then pause them again; the rows still pending."""
        gateway = self.gateway
        for loop in (gateway.worker, gateway.outbox):
            loop.resume()
            loop.notify()
        try:
            left = self.loop.run_until_complete(self._wait(time.monotonic() + timeout))
        finally:
            self.pause()
        return left

    async def _wait(self, deadline: float) -> int:
        while True:
            left = await asyncio.to_thread(self.pending)
            if not left or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    """The gateway, running for the whole module, with its logs captured."""
    tmp_path: Path = tmp_path_factory.mktemp("fuzz")
    patches = pytest.MonkeyPatch()
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    patches.setattr(passwords, "HASHER", cheap)
    rasa, actions = FakeRasa().start(), FakeActionServer().start()
    settings = make_settings(tmp_path, rasa.url, actions_url=actions.url)
    logs = LogCapture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(logs)
    root.setLevel(logging.INFO)
    senders = {channel: FakeSender(channel) for channel in CHANNELS}
    app = create_app(settings, options=OPTIONS, senders=senders)
    loop = asyncio.new_event_loop()
    lifespan = AsyncExitStack()
    try:
        loop.run_until_complete(
            lifespan.enter_async_context(app.router.lifespan_context(app))
        )
        helper = Fuzz(app, loop, settings.database_url, logs)
        helper.pause()
        with helper.sessions() as session:
            create_agent(session, AGENT, AGENT_PASSWORD, "agent", "Petugas")
            session.commit()
        yield helper
        loop.run_until_complete(helper.client.aclose())
        helper.engine.dispose()
    finally:
        try:
            loop.run_until_complete(lifespan.aclose())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
            root.removeHandler(logs)
            root.setLevel(level)
            rasa.stop()
            actions.stop()
            patches.undo()
