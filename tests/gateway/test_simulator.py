"""The simulator: page, API round trip through the fake Rasa, both channels."""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bot.channels import simulator
from bot.channels.base import SMS, TELEGRAM
from bot.gateway.simulator import origin_allowed
from bot.messages.events import NIK_CHECKED, enqueue_notification
from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import (
    FAST,
    PUBLIC_BASE_URL,
    Db,
    make_settings,
    running,
    wait_until,
)

QUESTION = [
    {
        "text": "Apakah kamu berusia 18 tahun ke atas? \U0001f60a",
        "buttons": [
            {"title": "Ya", "payload": "/affirm"},
            {"title": "Tidak", "payload": "/deny"},
        ],
    }
]


def send(client: TestClient, channel: str, user: str, **body: str) -> Any:
    """POST to the simulator's send API."""
    return client.post(
        "/simulator/api/send", json={"channel": channel, "user": user, **body}
    )


def bot_messages(client: TestClient, channel: str, user: str, count: int) -> Any:
    """Poll the messages API (as the page does) until `count` bot messages."""
    seen: list[dict[str, Any]] = []
    cursor = ""

    def poll() -> list[dict[str, Any]] | None:
        nonlocal cursor
        response = client.get(
            "/simulator/api/messages",
            params={"channel": channel, "user": user, "after": cursor},
        )
        assert response.status_code == 200, response.text
        data = response.json()
        cursor = data["cursor"]
        seen.extend(data["messages"])
        bots = [m for m in seen if m["from"] == "bot"]
        return seen if len(bots) >= count else None

    return wait_until(poll, what=f"{count} bot messages")


def test_the_page_is_self_contained_and_escapes_text(settings: Settings) -> None:
    with running(settings, senders={}) as client:
        response = client.get("/simulator")
    assert response.status_code == 200
    html = response.text
    assert "Telegram" in html and "SMS (HP biasa)" in html
    assert "innerHTML" not in html
    assert "http://" not in html and "https://" not in html
    policy = response.headers["content-security-policy"]
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in html
    assert "default-src 'none'" in policy


def test_telegram_round_trip_with_buttons(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.replies["halo"] = QUESTION
    with running(settings, senders={}) as client:
        assert send(client, TELEGRAM, "andi", text="halo").status_code == 200
        messages = bot_messages(client, TELEGRAM, "andi", 1)
        question = messages[-1]
        assert [m["from"] for m in messages] == ["user", "bot"]
        assert messages[0]["text"] == "halo"
        assert question["text"] == QUESTION[0]["text"]
        titles = [b["title"] for row in question["buttons"] for b in row]
        assert titles == ["Ya", "Tidak"]
        yes = question["buttons"][0][0]["payload"]
        assert send(client, TELEGRAM, "andi", payload=yes).status_code == 200
        messages = bot_messages(client, TELEGRAM, "andi", 2)
    assert rasa.messages() == ["halo", "/affirm"]
    assert messages[-2]["payload"] == yes
    assert messages[-1]["text"] == "Anda menulis: /affirm"
    assert all(row.status == "delivered" for row in db.outbox())
    assert all(c.simulated and c.address == "sim:andi" for c in db.conversations())


def test_sms_round_trip_shows_the_menu_and_segments(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    rasa.replies["halo"] = QUESTION
    with running(settings, senders={}) as client:
        send(client, SMS, "0812", text="halo")
        messages = bot_messages(client, SMS, "0812", 1)
        menu = messages[-1]
        assert "1. Ya" in menu["text"] and "2. Tidak" in menu["text"]
        assert "\U0001f60a" not in menu["text"]
        assert menu["segments"]["encoding"] == "GSM-7"
        assert menu["segments"]["segments"] == 1
        assert messages[0]["segments"]["units"] == 4
        send(client, SMS, "0812", text="1")
        messages = bot_messages(client, SMS, "0812", 2)
    assert rasa.messages() == ["halo", "/affirm"]
    assert messages[-1]["text"] == "Anda menulis: /affirm"


def test_internal_events_are_not_shown_as_the_persons_messages(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    """A NIK check's result reaches the conversation as an internal event: the
    bot's answer to it is shown, the event itself is not (it was an empty
    bubble from the person)."""
    with running(settings, senders={}) as client:
        send(client, SMS, "0812", text="halo")
        bot_messages(client, SMS, "0812", 1)
        with db.sessions() as session:
            assert enqueue_notification(
                session, SMS, simulator.address_of("0812"), NIK_CHECKED, "nik-1"
            )
            session.commit()
        messages = bot_messages(client, SMS, "0812", 2)
    assert [(m["from"], m["text"]) for m in messages] == [
        ("user", "halo"),
        ("bot", "Anda menulis: halo"),
        ("bot", "Anda menulis: /check_status"),
    ]


def test_bad_requests_are_refused_with_a_reason(settings: Settings, db: Db) -> None:
    with running(settings, senders={}) as client:
        cases = [
            {"channel": "whatsapp", "user": "andi", "text": "halo"},
            {"channel": TELEGRAM, "user": "", "text": "halo"},
            {"channel": TELEGRAM, "user": "andi", "text": "   "},
            {"channel": SMS, "user": "andi", "payload": "/affirm"},
        ]
        for body in cases:
            response = client.post("/simulator/api/send", json=body)
            assert response.status_code == 400
            assert response.json()["error"]
        bad_cursor = client.get(
            "/simulator/api/messages",
            params={"channel": SMS, "user": "x", "after": "a.b"},
        )
        assert bad_cursor.status_code == 400
    assert db.inbox() == []


def test_the_simulator_can_be_turned_off(settings: Settings, db: Db) -> None:
    with running(settings, options=replace(FAST, simulator=False), senders={}) as c:
        assert c.get("/simulator").status_code == 404
        assert c.post("/simulator/api/send", json={}).status_code == 404


def test_the_simulator_is_never_served_in_production(
    tmp_path: Path, rasa: FakeRasa
) -> None:
    settings = make_settings(
        tmp_path,
        rasa.url,
        PRAKERJA_ENV="production",
        PSEUDONYM_KEY=secrets.token_urlsafe(32),
        TELEGRAM_SECRET_TOKEN=secrets.token_hex(32),
        SMTP_URL="smtp://127.0.0.1:9",
        NIK_VERIFIER_URL="http://127.0.0.1:9",
        TRACKER_STORE_URL=f"sqlite:///{tmp_path}/tracker.db",
        REDIS_URL="redis://127.0.0.1:9",  # required with a channel, never used
    )
    assert not settings.is_development
    with running(settings, options=replace(FAST, simulator=True), senders={}) as c:
        assert c.get("/simulator").status_code == 404
        assert c.post("/simulator/api/send", json={}).status_code == 404
        assert c.get("/simulator/api/messages").status_code == 404


def test_sending_needs_json_from_the_same_origin(settings: Settings, db: Db) -> None:
    body = json.dumps({"channel": SMS, "user": "andi", "text": "halo"})
    with running(settings, senders={}) as client:
        as_text = client.post(
            "/simulator/api/send",
            content=body,
            headers={"Content-Type": "text/plain"},
        )
        cross_site = client.post(
            "/simulator/api/send",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Origin": "https://evil.example",
            },
        )
        null_origin = client.post(
            "/simulator/api/send",
            content=body,
            headers={"Content-Type": "application/json", "Origin": "null"},
        )
        assert db.inbox() == []
        same_site = client.post(
            "/simulator/api/send",
            content=body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Origin": PUBLIC_BASE_URL,
            },
        )
        no_origin = client.post(
            "/simulator/api/send",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert (as_text.status_code, cross_site.status_code) == (415, 403)
    assert null_origin.status_code == 403
    assert (same_site.status_code, no_origin.status_code) == (200, 200)
    assert len(db.inbox()) == 2


def test_the_origin_is_compared_with_the_public_url_not_the_host(
    settings: Settings, db: Db
) -> None:
    """A DNS-rebinding page names its own host in both Host and Origin."""
    body = json.dumps({"channel": SMS, "user": "andi", "text": "halo"})
    with running(settings, senders={}) as client:
        rebound = client.post(
            "/simulator/api/send",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Host": "evil.example",
                "Origin": "http://evil.example",
            },
        )
        own_host = client.post(
            "/simulator/api/send",
            content=body,
            headers={"Content-Type": "application/json", "Origin": "http://testserver"},
        )
    assert (rebound.status_code, own_host.status_code) == (403, 403)
    assert db.inbox() == []


@pytest.mark.parametrize(
    ("public", "origin", "allowed"),
    [
        ("http://localhost:8000", "http://localhost:8000", True),
        ("http://localhost:8000", "http://127.0.0.1:8000", True),
        ("http://localhost:8000", "http://[::1]:8000", True),
        ("http://localhost:8000", "http://127.0.0.1:8001", False),
        ("http://localhost:8000", "https://localhost:8000", False),
        ("http://localhost:8000", "http://evil.example:8000", False),
        ("https://bot.example.id", "https://bot.example.id", True),
        ("https://bot.example.id", "https://localhost", False),
        ("https://bot.example.id", "http://bot.example.id", False),
        ("https://bot.example.id", "http://localhost:8000", True),
        ("https://bot.example.id", "http://127.0.0.1:8000", True),
        ("https://bot.example.id", "http://localhost:9000", False),
        ("https://bot.example.id", "http://evil.example:8000", False),
        ("https://bot.example.id", "null", False),
        ("https://bot.example.id", "http://localhost:x", False),
    ],
)
def test_the_public_origin_and_the_local_gateway_port_are_allowed(
    public: str, origin: str, allowed: bool
) -> None:
    assert origin_allowed(origin, public, local_port=8000) is allowed
