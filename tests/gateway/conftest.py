"""Shared pieces of the gateway tests: settings, a fake Rasa, senders, databases.

Every test gets its own SQLite file in tmp_path (or its own PostgreSQL database)
and a real gateway app run with Starlette's TestClient (lifespan included, so the
worker and outbox loops run in the background exactly as under uvicorn).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from telegram import CallbackQuery, Chat, Message, Update, User
from twilio.request_validator import RequestValidator

from bot.channels.base import SendResult
from bot.db import make_engine, make_sessionmaker
from bot.gateway.app import create_app
from bot.gateway.options import GatewayOptions
from bot.messages.models import Conversation, InboxMessage, OutboxMessage
from bot.settings import Settings, load_settings
from tests.fakes.rasa import FakeRasa
from tests.gateway.fake_actions import FakeActionServer
from tests.postgres import migrated_sessions, postgres_database

PSEUDONYM_KEY = "test-pseudonym-key-not-secret-0123456789"
TELEGRAM_SECRET = "test-telegram-secret-token"
TWILIO_TOKEN = "test-twilio-auth-token"
PUBLIC_BASE_URL = "https://gateway.example.org"

FAST = GatewayOptions(
    poll_interval=0.05,
    lease_seconds=30.0,
    worker_concurrency=8,
    rasa_timeout=5.0,
    rasa_backoff_base=0.05,
    rasa_backoff_cap=0.3,
    actions_health_ttl=0.2,
    actions_health_timeout=1.0,
    outbox_concurrency=8,
    send_timeout=5.0,
    send_backoff_base=0.05,
    send_backoff_cap=0.3,
    max_send_attempts=4,
    shutdown_grace=10.0,
    simulator=True,
)


def make_settings(
    tmp_path: Path,
    rasa_url: str,
    database_url: str = "",
    actions_url: str = "",
    **extra: str,
) -> Settings:
    """Test settings: own database, fake Rasa (and action server), known secrets,
    no provider tokens (unless given in `extra`, e.g. TELEGRAM_TOKEN=...)."""
    return load_settings(
        {
            "PRAKERJA_ENV": "test",
            "PRAKERJA_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": database_url or f"sqlite:///{tmp_path}/gateway.db",
            "RASA_URL": rasa_url,
            "ACTIONS_URL": actions_url or "http://127.0.0.1:9",
            "PSEUDONYM_KEY": PSEUDONYM_KEY,
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_FROM_NUMBER": "+15550001111",
            **extra,
        }
    )


def wait_until(
    condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition"
) -> Any:
    """Poll until `condition()` is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Sent:
    """One body a fake sender was asked to send."""

    address: str
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class FakeSender:
    """A channel's Sender that records bodies and answers with scripted results."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.script: list[SendResult] = []
        self.fallback: SendResult | None = None
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        self._count = 0

    async def send(self, address: str, body: dict[str, Any]) -> SendResult:
        """Record the body; answer with the next scripted result (default: ok)."""
        await asyncio.sleep(0)
        with self._lock:
            self.sent.append(Sent(address, body))
            self._count += 1
            if self.script:
                return self.script.pop(0)
            if self.fallback is not None:
                return self.fallback
            return SendResult(
                ok=True, provider_message_id=f"{self.channel}-{self._count}"
            )

    def texts(self) -> list[str]:
        """The text of every body sent so far."""
        with self._lock:
            return [str(s.body.get("text", "")) for s in self.sent]


class Db:
    """Direct access to a test database, to look at what the gateway stored."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)

    def all(self, model: Any, *where: Any) -> list[Any]:
        """Rows of a model, in id order."""
        with self.sessions() as session:
            query = select(model).where(*where).order_by(model.id)
            return list(session.execute(query).scalars().all())

    def inbox(self, *where: Any) -> list[InboxMessage]:
        """Inbox rows."""
        return self.all(InboxMessage, *where)

    def outbox(self, *where: Any) -> list[OutboxMessage]:
        """Outbox rows."""
        return self.all(OutboxMessage, *where)

    def conversations(self, *where: Any) -> list[Conversation]:
        """Conversation rows."""
        return self.all(Conversation, *where)

    def close(self) -> None:
        """Close the connections."""
        self.engine.dispose()


def unknown_sends(client: TestClient) -> dict[str, int]:
    """The unknown-outcome counters on /healthz, once the outbox handles no
    send (an outcome is counted just after the commit that stores it, which
    the test may have seen already)."""
    outbox = client.app.state.gateway.outbox  # type: ignore[attr-defined]
    wait_until(lambda: outbox.in_flight == 0, what="the sends in flight to end")
    counters: dict[str, int] = client.get("/healthz").json()["unknown_sends"]
    return counters


@contextmanager
def running(
    settings: Settings, options: GatewayOptions = FAST, **kwargs: Any
) -> Iterator[TestClient]:
    """A gateway app with its lifespan running (loops in the background)."""
    app = create_app(settings, options=options, **kwargs)
    with TestClient(app) as client:
        yield client


def telegram_update(
    update_id: int, chat_id: int, text: str, message_id: int | None = None
) -> dict[str, Any]:
    """A private-chat text message update, built with python-telegram-bot.

    `message_id`: the message's id in the chat (default `update_id`); with the
    fake Bot API, the one its `person_writes` gave, so that the person's and
    the bot's messages share one count as in a real chat."""
    user = User(id=chat_id, first_name="Andi", is_bot=False)
    chat = Chat(id=chat_id, type=Chat.PRIVATE)
    message = Message(
        message_id=update_id if message_id is None else message_id,
        date=datetime.now(timezone.utc),
        chat=chat,
        from_user=user,
        text=text,
    )
    return Update(update_id, message=message).to_dict()


def telegram_callback(update_id: int, chat_id: int, data: str) -> dict[str, Any]:
    """A button press (callback query) update, built with python-telegram-bot."""
    user = User(id=chat_id, first_name="Andi", is_bot=False)
    chat = Chat(id=chat_id, type=Chat.PRIVATE)
    message = Message(
        message_id=update_id, date=datetime.now(timezone.utc), chat=chat, text="x"
    )
    query = CallbackQuery(
        id=f"cq{update_id}",
        from_user=user,
        chat_instance="ci",
        data=data,
        message=message,
    )
    return Update(update_id, callback_query=query).to_dict()


def post_telegram(
    client: TestClient, update: dict[str, Any], secret: str = TELEGRAM_SECRET
) -> Any:
    """POST an update to the webhook as Telegram does."""
    return client.post(
        "/telegram/webhook",
        content=json.dumps(update),
        headers={
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": secret,
        },
    )


def post_twilio(
    client: TestClient, path: str, params: dict[str, str], token: str = TWILIO_TOKEN
) -> Any:
    """POST form parameters signed with twilio's RequestValidator, as Twilio does."""
    signature = RequestValidator(token).compute_signature(
        PUBLIC_BASE_URL + path, params
    )
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def sms_params(sid: str, sender: str, body: str) -> dict[str, str]:
    """The parameters of an inbound SMS webhook."""
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15550001111",
        "Body": body,
        "NumMedia": "0",
    }


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    """A running fake Rasa."""
    fake = FakeRasa().start()
    yield fake
    fake.stop()


@pytest.fixture
def actions() -> Iterator[FakeActionServer]:
    """A running fake action server (its health check)."""
    fake = FakeActionServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(tmp_path: Path, rasa: FakeRasa, actions: FakeActionServer) -> Settings:
    """Settings on a fresh SQLite file, the fake Rasa and the fake action server."""
    return make_settings(tmp_path, rasa.url, actions_url=actions.url)


@pytest.fixture
def db(settings: Settings) -> Iterator[Db]:
    """The test database (schema created by the gateway when it starts)."""
    database = Db(settings.database_url)
    yield database
    database.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards.

    Skipped when the server is unreachable, except under CI=true, where that fails.
    """
    with postgres_database("gateway_test") as url:
        yield url


@pytest.fixture(scope="module")
def postgres_sessions(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A migrated PostgreSQL database shared by a test module's cases (each
    case empties the tables it uses)."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    path = tmp_path_factory.mktemp(name)
    with migrated_sessions("postgresql", path, name) as made:
        yield made
