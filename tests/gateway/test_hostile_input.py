"""Hostile input at the gateway's edge gets a clear 4xx, or is acknowledged and
ignored for a provider's webhook, never a 500 (issue 12, finding 6).

Each case runs on SQLite and on PostgreSQL (which refuses NUL in text and in
JSONB); the app's exceptions are raised in the test (`raise_server_exceptions`),
so a crash fails the test rather than hiding behind a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bot.gateway.app import create_app
from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import (
    FAST,
    TELEGRAM_SECRET,
    Db,
    make_settings,
    post_twilio,
    sms_params,
    telegram_callback,
    telegram_update,
)
from tests.gateway.fake_actions import FakeActionServer
from tests.postgres import BACKENDS, fresh_database

NESTED = "[" * 30_000 + "]" * 30_000  # under the 64 KiB body limit
LONE_SURROGATE = '"a\\ud800b"'


@pytest.fixture(params=BACKENDS)
def hostile_settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    rasa: FakeRasa,
    actions: FakeActionServer,
) -> Iterator[Settings]:
    """Settings on a fresh database of each backend."""
    with fresh_database(str(request.param), tmp_path, "hostile_test") as url:
        yield make_settings(tmp_path, rasa.url, url, actions.url)


@pytest.fixture
def client(hostile_settings: Settings) -> Iterator[TestClient]:
    """The running gateway, with no senders (nothing leaves the test)."""
    app = create_app(hostile_settings, options=FAST, senders={})
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def db(hostile_settings: Settings) -> Iterator[Db]:
    """The test database."""
    database = Db(hostile_settings.database_url)
    yield database
    database.close()


def post_raw_telegram(client: TestClient, body: str) -> Any:
    """POST a raw body to the Telegram webhook with the right secret."""
    return client.post(
        "/telegram/webhook",
        content=body.encode("utf-8"),
        headers={
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
        },
    )


def test_a_telegram_message_without_chat_is_acknowledged_and_ignored(
    client: TestClient, db: Db
) -> None:
    update = telegram_update(1, 4242, "halo")
    del update["message"]["chat"]
    response = post_raw_telegram(client, json.dumps(update))
    assert response.status_code == 200
    assert db.inbox() == []


@pytest.mark.parametrize("where", ["text", "first_name", "callback"])
def test_nul_in_a_telegram_update_is_acknowledged_and_ignored(
    client: TestClient, db: Db, where: str
) -> None:
    if where == "callback":
        update = telegram_callback(2, 4242, "1:/affirm\x00")
    else:
        update = telegram_update(2, 4242, "halo\x00" if where == "text" else "halo")
        update["message"]["from"]["first_name"] = "An\x00di"
    response = post_raw_telegram(client, json.dumps(update))
    assert response.status_code == 200
    assert db.inbox() == []


def test_a_lone_surrogate_in_telegram_text_is_acknowledged_and_ignored(
    client: TestClient, db: Db
) -> None:
    body = json.dumps(telegram_update(3, 4242, "PLACEHOLDER"))
    response = post_raw_telegram(client, body.replace('"PLACEHOLDER"', LONE_SURROGATE))
    assert response.status_code == 200
    assert db.inbox() == []


def test_deeply_nested_json_to_the_telegram_webhook_is_a_400(
    client: TestClient, db: Db
) -> None:
    assert post_raw_telegram(client, NESTED).status_code == 400
    assert db.inbox() == []


def test_nul_in_an_sms_is_acknowledged_and_ignored(client: TestClient, db: Db) -> None:
    params = sms_params("SM" + "1" * 32, "+6281234567890", "halo\x00")
    response = post_twilio(client, "/sms/inbound", params)
    assert response.status_code == 200
    assert db.inbox() == []


@pytest.mark.parametrize(
    "body",
    [
        '{"channel": "sms", "user": "andi", "text": "halo\\u0000"}',
        '{"channel": "telegram", "user": "andi", "text": "a\\ud800b"}',
        '{"channel": "telegram", "user": "andi", "payload": "/x\\u0000"}',
        '{"channel": "telegram", "user": "an\\udfffdi", "text": "halo"}',
        NESTED,
    ],
    ids=["nul", "surrogate", "nul-payload", "surrogate-user", "nested"],
)
def test_hostile_simulator_input_is_a_400(
    client: TestClient, db: Db, body: str
) -> None:
    response = client.post(
        "/simulator/api/send",
        content=body.encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "error" in response.json()
    assert db.inbox() == []


@pytest.mark.parametrize("path", ["/sms/inbound", "/sms/status", "/console/login"])
def test_a_broken_multipart_form_is_a_400(client: TestClient, path: str) -> None:
    """python-multipart's parse errors escape Starlette's form parser (found by
    the fuzz test)."""
    response = client.post(
        path,
        content=b"3174011508900001",
        headers={
            "Content-Type": "multipart/form-data; boundary=x",
            "Origin": "http://testserver",
        },
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "change",
    [
        ("callback_query", "data", False),
        ("callback_query", "from", {"id": ["x", None], "is_bot": 0, "first_name": 7}),
        ("message", "text", {"a": 1}),
        ("message", "chat", {"id": ["x"], "type": "private"}),
        ("message", "from", {"id": 1, "is_bot": False, "first_name": ["A"]}),
        ("message", "photo", [{"file_id": "f", "width": "w", "height": [1]}]),
    ],
    ids=["data", "callback-from", "text", "chat-id", "first-name", "photo"],
)
def test_a_telegram_update_with_fields_of_the_wrong_type_is_a_400(
    client: TestClient, db: Db, change: tuple[str, str, Any]
) -> None:
    """python-telegram-bot does not check types (found by the fuzz test)."""
    kind, key, value = change
    if kind == "callback_query":
        update = telegram_callback(7, 4242, "1:/affirm")
    else:
        update = telegram_update(7, 4242, "halo")
    update[kind][key] = value
    assert post_raw_telegram(client, json.dumps(update)).status_code == 400
    assert db.inbox() == []
