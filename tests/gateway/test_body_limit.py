"""Request bodies are capped before any work (issue 12, finding 3).

A declared Content-Length over the route's limit is refused with 413 before a
byte of the body is read; a body of unknown length (chunked) is read only until
it passes the limit. The requests go straight into the real app (lifespan
running) through ASGI, with a `receive` that would produce 300 MB and counts
what the app pulled, so "not buffered" is measured, not assumed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.testclient import TestClient

from bot.gateway.app import create_app
from bot.gateway.limits import BODY_LIMITS, DEFAULT_BODY_LIMIT, body_limit
from bot.settings import Settings
from tests.gateway.conftest import (
    FAST,
    TELEGRAM_SECRET,
    Db,
    post_telegram,
    telegram_update,
)

HUGE = 300 * 1024 * 1024
CHUNK = 64 * 1024
TELEGRAM_PATH = "/telegram/webhook"
FORM = {"content-type": "application/x-www-form-urlencoded"}
PATHS = [
    (TELEGRAM_PATH, {"x-telegram-bot-api-secret-token": TELEGRAM_SECRET}),
    (TELEGRAM_PATH, {"x-telegram-bot-api-secret-token": "wrong"}),
    ("/sms/inbound", FORM),
    ("/sms/status", FORM),
    ("/console/login", FORM),
    ("/console/tickets/1/reply", FORM),
    ("/simulator/api/send", {"content-type": "application/json"}),
]
REFUSED_BEFORE_READING = {
    (TELEGRAM_PATH, "wrong"): 403,  # the secret token is checked first
    ("/console/tickets/1/reply", None): 401,  # no session
}
"""Requests of unknown length refused, without reading, before the limit matters."""


@dataclass
class Exchange:
    """One ASGI request: what the app pulled and what it answered."""

    pulled: int = 0
    status: int | None = None
    body: bytes = b""
    messages: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The running gateway (its lifespan runs in the client's event loop)."""
    with TestClient(create_app(settings, options=FAST, senders={})) as test_client:
        yield test_client


def call(
    client: TestClient,
    path: str,
    headers: dict[str, str],
    declared: int | None,
    total: int = HUGE,
) -> Exchange:
    """POST `total` bytes to `path` through ASGI, in 64 KiB chunks on demand."""
    exchange = Exchange()
    raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw_headers.append((b"host", b"testserver"))
    if declared is not None:
        raw_headers.append((b"content-length", str(declared).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        if exchange.pulled >= total:
            return {"type": "http.disconnect"}
        size = min(CHUNK, total - exchange.pulled)
        exchange.pulled += size
        more = exchange.pulled < total
        return {"type": "http.request", "body": b"{" * size, "more_body": more}

    async def send(message: dict[str, Any]) -> None:
        exchange.messages.append(message)
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
        elif message["type"] == "http.response.body":
            exchange.body += message.get("body", b"")

    async def run() -> None:
        await client.app(scope, receive, send)  # type: ignore[arg-type]

    client.portal.call(run)  # type: ignore[union-attr]
    return exchange


@pytest.mark.parametrize(("path", "headers"), PATHS)
def test_a_declared_length_over_the_limit_is_refused_before_reading(
    client: TestClient, db: Db, path: str, headers: dict[str, str]
) -> None:
    started = time.monotonic()
    exchange = call(client, path, headers, declared=HUGE)
    assert exchange.status == 413
    assert exchange.pulled == 0
    assert time.monotonic() - started < 2
    assert db.inbox() == []


@pytest.mark.parametrize(("path", "headers"), PATHS)
def test_a_chunked_body_is_read_only_until_it_passes_the_limit(
    client: TestClient, db: Db, path: str, headers: dict[str, str]
) -> None:
    started = time.monotonic()
    exchange = call(client, path, headers, declared=None)
    secret = headers.get("x-telegram-bot-api-secret-token")
    early = REFUSED_BEFORE_READING.get((path, secret))
    if early is not None:
        assert (exchange.status, exchange.pulled) == (early, 0)
    else:
        assert exchange.status == 413
        assert exchange.pulled <= body_limit(path) + CHUNK
    assert time.monotonic() - started < 5
    assert db.inbox() == []


def test_the_limits_fit_the_largest_legitimate_bodies() -> None:
    """Telegram updates, Twilio parameters, console forms, the simulator."""
    assert body_limit(TELEGRAM_PATH) == BODY_LIMITS[TELEGRAM_PATH] >= 512 * 1024
    assert body_limit("/sms/inbound") == DEFAULT_BODY_LIMIT == 64 * 1024
    assert body_limit("/console/tickets/7/notes") == DEFAULT_BODY_LIMIT


def test_a_body_under_the_limit_still_works(client: TestClient, db: Db) -> None:
    update = telegram_update(1, 4242, "halo " * 5000)  # 25 KB of text
    assert post_telegram(client, update).status_code == 200
    assert len(db.inbox()) == 1


def test_a_bad_content_length_is_a_400(client: TestClient) -> None:
    for value in ("abc", "-1", "1e9"):
        exchange = call(client, "/sms/inbound", {"content-length": value}, None, 10)
        assert exchange.status == 400, value
        assert exchange.pulled == 0
