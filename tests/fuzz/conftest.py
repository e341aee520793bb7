"""The fuzz test's running gateway and its log capture.

One gateway app per module (lifespan running: workers, outbox and the other
loops handle what the fuzz stores, through a fake Rasa and senders that accept
everything), on a SQLite file, with the console's cheap argon2id parameters.
While bodies are sent the fake action server is down, so the workers hold the
stored messages (as in an outage) instead of competing with the requests for
the two CPU cores; `drain` brings it up and lets them work for a while.

Every log record of every logger at INFO and above is kept, formatted as a
handler would write it (tracebacks included), so the test can look for
tracebacks and personal data in it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from starlette.testclient import TestClient

import bot.console.passwords as passwords
from bot.channels.base import CHANNELS
from bot.console.agents import create_agent
from bot.db import make_engine, make_sessionmaker
from bot.gateway.app import create_app
from bot.gateway.models import INBOX_PENDING, InboxMessage
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import FAST, FakeSender, make_settings
from tests.gateway.fake_actions import FakeActionServer

OPTIONS = replace(FAST, worker_concurrency=1, outbox_concurrency=2)
"""One conversation at a time: while the action server is down, the conversation
in hand is retried every 0.2 s; thousands in hand would crowd out the requests."""
AGENT = "petugas"
AGENT_PASSWORD = "kata-sandi-uji-yang-panjang"


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
    """The running app, its database and the captured logs."""

    def __init__(
        self,
        client: TestClient,
        database_url: str,
        logs: LogCapture,
        actions: FakeActionServer,
    ):
        self.client = client
        self.actions = actions
        self.logs = logs
        self.engine = make_engine(database_url)
        self.sessions = make_sessionmaker(self.engine)
        self.personal: set[str] = set()
        self.sent = 0

    def pending(self) -> int:
        """Stored messages the workers have not handled yet."""
        with self.sessions() as session:
            query = select(func.count(InboxMessage.id)).where(
                InboxMessage.status == INBOX_PENDING
            )
            return int(session.execute(query).scalar_one())

    def drain(self, timeout: float) -> None:
        """Let the workers handle what was stored, for up to `timeout` seconds."""
        self.actions.up()
        try:
            deadline = time.monotonic() + timeout
            while self.pending() and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            self.actions.down()


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
    actions.down()
    senders = {channel: FakeSender(channel) for channel in CHANNELS}
    app = create_app(settings, options=OPTIONS, senders=senders)
    try:
        with TestClient(
            app, base_url="https://testserver", raise_server_exceptions=False
        ) as client:
            helper = Fuzz(client, settings.database_url, logs, actions)
            with helper.sessions() as session:
                create_agent(session, AGENT, AGENT_PASSWORD, "agent", "Petugas")
                session.commit()
            yield helper
            helper.engine.dispose()
    finally:
        root.removeHandler(logs)
        root.setLevel(level)
        rasa.stop()
        actions.stop()  # a no-op when it is down already
        patches.undo()
