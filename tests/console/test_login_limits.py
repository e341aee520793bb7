"""Login limits over HTTP, through the same uvicorn wrapping as `python -m bot`:
forwarded headers count only from TRUSTED_PROXIES, anonymous failures cannot
lock an agent out, and refused logins cannot flush the audit log.

Each client below is a TestClient whose peer address is set, on the running
console app wrapped by `uvicorn.Config(app, **forwarding(settings))` exactly as
the gateway's server wraps it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import uvicorn
from sqlalchemy import func, select
from starlette.testclient import TestClient

from bot.__main__ import forwarding
from bot.console import audit
from bot.console.models import AuditEvent
from bot.settings import Settings
from tests.console.conftest import BASE_URL, PASSWORD, Console

GENERIC = "Nama pengguna atau kata sandi salah"


def served(console: Console, settings: Settings | None = None) -> Any:
    """The console app as uvicorn serves it with these settings."""
    config = uvicorn.Config(
        console.client.app, **forwarding(settings or console.settings)
    )
    config.load()
    return config.loaded_app


def peer(app: Any, host: str) -> TestClient:
    """A client connecting from `host` (no lifespan: the app already runs)."""
    return TestClient(app, base_url=BASE_URL, client=(host, 40000))


def log_in(
    client: TestClient, username: str, password: str, forwarded: str | None = None
) -> Any:
    """GET the login form and POST it, optionally with an X-Forwarded-For."""
    extra = {"X-Forwarded-For": forwarded} if forwarded else {}
    client.cookies.clear()
    form = client.get("/console/login", headers=extra)
    token = form.cookies.get("console_login")
    assert token
    return client.post(
        "/console/login",
        data={"csrf": token, "username": username, "password": password},
        headers={"Origin": BASE_URL, "Cookie": f"console_login={token}", **extra},
        follow_redirects=False,
    )


def audit_rows(console: Console) -> int:
    return int(
        console.run(lambda s: s.execute(select(func.count(AuditEvent.id))).scalar_one())
    )


def test_forged_forwarded_for_does_not_escape_the_client_limit(
    console: Console,
) -> None:
    console.agent("andi")
    attacker = peer(served(console), "127.0.0.1")
    for number in range(25):
        response = log_in(
            attacker, f"tidak-ada-{number}", "salah-salah-salah", f"198.51.100.{number}"
        )
        assert response.status_code == 401
    response = log_in(attacker, "andi", PASSWORD, "198.51.100.200")
    assert response.status_code == 401  # the peer itself is limited
    assert GENERIC in response.text


def test_anonymous_failures_do_not_lock_out_the_agent_elsewhere(
    console: Console,
) -> None:
    console.agent("andi")
    app = served(console)
    attacker = peer(app, "203.0.113.66")
    office = peer(app, "198.51.100.7")
    for _ in range(3):
        for username in ("andi", "ANDI", " Andi ", "andi", "Andi", "andi"):
            response = log_in(attacker, username, "salah-salah-salah")
            assert response.status_code == 401
        response = log_in(office, "andi", PASSWORD)
        assert response.status_code == 303, response.text


def test_a_trusted_proxy_passes_on_the_client_address(
    console: Console,
) -> None:
    console.agent("andi")
    settings = dataclasses.replace(console.settings, trusted_proxies=("10.0.0.0/8",))
    proxy = peer(served(console, settings), "10.1.2.3")
    for number in range(21):
        forged = f"192.0.2.{number}, 203.0.113.66"  # the proxy appends the peer
        response = log_in(proxy, f"tidak-ada-{number}", "salah-salah-salah", forged)
        assert response.status_code == 401
    limited = log_in(proxy, "andi", PASSWORD, "203.0.113.66")
    assert limited.status_code == 401
    response = log_in(proxy, "andi", PASSWORD, "198.51.100.7")
    assert response.status_code == 303, response.text


def test_refused_logins_cannot_flush_the_audit_log(console: Console) -> None:
    sari = console.agent("sari", "supervisor")
    andi = console.agent("andi")
    ticket = console.ticket()
    target = "applicant:7 field:nik"
    console.run(
        lambda s: audit.record(
            s, audit.REVEAL, andi.id, ticket_id=ticket.id, target=target
        )
    )
    before = audit_rows(console)
    app = served(console)
    for number in range(230):
        host = f"198.51.{100 + number // 200}.{number % 200 + 1}"
        username = "andi" if number % 2 else f"tidak-ada-{number}"
        client = peer(app, host)
        assert log_in(client, username, "salah-salah-salah").status_code == 401
    assert audit_rows(console) - before <= 5
    browser = console.login(sari)
    page = console.get(browser, "/console/supervisor")
    assert page.status_code == 200
    assert target in page.text
    reveals = console.get(browser, "/console/supervisor?event=reveal")
    assert target in reveals.text and "1 kejadian" in reveals.text
