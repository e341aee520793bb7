"""Security of the console: login required everywhere, CSRF, origins, cookies,
login limits, headers, and no way for hostile text to run as script.

Routes are read from the app itself, so a route added later is covered too.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from bot.console.models import AgentSession, AuditEvent, LoginThrottle
from bot.console.web import CSP
from bot.gateway.app import create_app
from bot.settings import Settings
from tests.console.conftest import (
    BASE_URL,
    PASSWORD,
    Console,
    concrete,
    console_routes,
    guarded,
)
from tests.gateway.conftest import FAST, make_settings

CONSOLE = Path(__file__).resolve().parents[2] / "bot" / "console"
EXPECTED_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
GENERIC = "Nama pengguna atau kata sandi salah"


def audit_count(console: Console) -> int:
    return int(
        console.run(lambda s: s.execute(select(func.count(AuditEvent.id))).scalar_one())
    )


def test_the_console_has_the_expected_routes(console: Console) -> None:
    routes = console_routes(console.client.app)
    assert ("/login", "GET") in routes and ("/login", "POST") in routes
    assert len(guarded(console.client.app)) >= 14
    posts = [p for p, m in guarded(console.client.app) if m == "POST"]
    assert "/tickets/{ticket_id:int}/reply" in posts
    assert "/tickets/{ticket_id:int}/reveal" in posts


def test_every_console_route_requires_login(console: Console) -> None:
    ticket = console.ticket()
    for path, method in guarded(console.client.app):
        url = concrete(path, ticket.id)
        for cookie in ({}, {"Cookie": "console_session=forged-token-value"}):
            if method == "GET":
                response = console.client.get(
                    url, headers=cookie, follow_redirects=False
                )
                if path.startswith("/api/"):
                    assert response.status_code == 401, url
                else:
                    assert response.status_code == 303, url
                    assert response.headers["location"] == "/console/login"
            else:
                response = console.client.post(
                    url,
                    data={"csrf": "x", "text": "hai"},
                    headers={"Origin": BASE_URL, **cookie},
                    follow_redirects=False,
                )
                assert response.status_code == 401, url
    assert audit_count(console) == 0


def test_the_login_page_and_static_files_are_public(console: Console) -> None:
    assert console.get(None, "/console/login").status_code == 200
    assert console.get(None, "/console/static/console.css").status_code == 200
    assert console.get(None, "/console/static/console.js").status_code == 200


def test_every_post_requires_the_session_csrf_token(console: Console) -> None:
    supervisor = console.agent("sari", "supervisor")
    other = console.agent("andi")
    browser = console.login(supervisor)
    other_browser = console.login(other)
    ticket = console.ticket()
    before = audit_count(console)
    posts = [p for p, m in guarded(console.client.app) if m == "POST"]
    for path in posts:
        url = concrete(path, ticket.id)
        for token in (None, "", "wrong-token", other_browser.csrf):
            response = console.post(
                browser, url, {"text": "hai", "agent_id": str(other.id)}, csrf=token
            )
            assert response.status_code == 403, (url, token)
            json_response = console.client.post(
                url,
                json={"text": "hai", "field": "nik"},
                headers=browser.headers(
                    Origin=BASE_URL, **({"X-CSRF-Token": token} if token else {})
                ),
                follow_redirects=False,
            )
            assert json_response.status_code == 403, (url, token)
    assert audit_count(console) == before  # nothing was done
    # the session is still alive: the refusals were about the token only
    assert console.get(browser, "/console/queue").status_code == 200


def test_a_post_with_the_token_but_from_another_site_is_refused(
    console: Console,
) -> None:
    agent = console.agent("andi")
    browser = console.login(agent)
    ticket = console.ticket()
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": BASE_URL, "Sec-Fetch-Site": "cross-site"},
    ):
        response = console.post(
            browser, f"/console/tickets/{ticket.id}/claim", headers=headers
        )
        assert response.status_code == 403, headers
    page = console.get(browser, f"/console/tickets/{ticket.id}")
    assert "Ambil tiket" in page.text  # still not claimed


def test_the_login_form_needs_its_double_submit_token(console: Console) -> None:
    agent = console.agent("andi")
    console.client.cookies.clear()
    for cookie, field in (("", ""), ("a" * 43, "b" * 43), ("a" * 43, "")):
        response = console.client.post(
            "/console/login",
            data={"csrf": field, "username": agent.username, "password": PASSWORD},
            headers={"Origin": BASE_URL, "Cookie": f"console_login={cookie}"},
            follow_redirects=False,
        )
        assert response.status_code == 403
        assert "console_session" not in response.headers.get("set-cookie", "")
    _, response = console.post_login(agent.username, PASSWORD)
    assert response.status_code == 303


def test_session_cookie_flags_and_only_the_token_hash_is_stored(
    console: Console,
) -> None:
    agent = console.agent("andi")
    _, response = console.post_login(agent.username, PASSWORD)
    cookies = [
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("console_session=")
    ]
    assert len(cookies) == 1
    cookie = cookies[0]
    token = cookie.split(";", 1)[0].split("=", 1)[1]
    flags = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/console" in flags
    assert "secure" in flags
    assert len(token) >= 43  # 32 random bytes, base64
    rows = console.run(lambda s: s.execute(select(AgentSession)).scalars().all())
    assert [row.token_hash for row in rows] == [
        hashlib.sha256(token.encode()).hexdigest()
    ]
    assert all(token not in (row.csrf_token, row.token_hash) for row in rows)


def test_cookies_are_not_secure_over_plain_http(
    tmp_path: Path, rasa: Any, actions: Any
) -> None:
    settings: Settings = make_settings(
        tmp_path,
        rasa.url,
        actions_url=actions.url,
        PUBLIC_BASE_URL="http://localhost:8000",
    )
    app = create_app(settings, options=FAST, senders={})
    with TestClient(app, base_url="http://localhost:8000") as client:
        console = Console(client, settings, sms=None)  # type: ignore[arg-type]
        try:
            agent = console.agent("andi")
            _, response = console.post_login(agent.username, PASSWORD)
        finally:
            console.close()
    cookie = response.headers["set-cookie"]
    assert "console_session=" in cookie
    assert "secure" not in cookie.lower()


def test_logout_deletes_the_session(console: Console) -> None:
    agent = console.agent("andi")
    browser = console.login(agent)
    response = console.post(browser, "/console/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"
    assert 'console_session=""' in response.headers["set-cookie"]
    assert console.run(lambda s: s.execute(select(AgentSession)).all()) == []
    assert console.get(browser, "/console/queue").status_code == 303


def test_twenty_failures_from_one_client_block_it(console: Console) -> None:
    agent = console.agent("andi")
    before = audit_count(console)
    for number in range(20):
        _, response = console.post_login(f"tidak-ada-{number}", "salah-salah-salah")
        assert response.status_code == 401
    _, response = console.post_login(agent.username, PASSWORD)
    assert response.status_code == 401
    assert GENERIC in response.text
    assert audit_count(console) == before  # counted, not audited one by one
    [(key, failures)] = console.run(
        lambda s: s.execute(
            select(LoginThrottle.key, LoginThrottle.failures).where(
                LoginThrottle.key.like("client:%")
            )
        ).all()
    )
    assert failures == 21
    assert key.startswith("client:ip:")
    assert "testclient" not in key  # the address is hashed


def test_unknown_user_and_wrong_password_look_the_same(console: Console) -> None:
    agent = console.agent("andi")
    _, unknown = console.post_login("siapa", "salah-salah-salah")
    _, wrong = console.post_login(agent.username, "salah-salah-salah")
    assert unknown.status_code == wrong.status_code == 401

    def message(text: str) -> str:
        found = re.search(r'role="alert">([^<]+)<', text)
        assert found
        return found.group(1)

    assert message(unknown.text) == message(wrong.text)


def test_every_console_response_has_the_security_headers(console: Console) -> None:
    supervisor = console.agent("sari", "supervisor")
    agent = console.agent("andi")
    browser = console.login(supervisor)
    agent_browser = console.login(agent)
    ticket = console.ticket()
    responses = [
        console.get(None, "/console/login"),
        console.get(None, "/console/static/console.js"),
        console.get(None, "/console/queue"),
        console.get(None, "/console/api/queue"),
        console.get(browser, "/console/no-such-page"),
        console.get(agent_browser, "/console/supervisor"),
    ]
    for path, method in guarded(console.client.app):
        if method == "GET":
            responses.append(console.get(browser, concrete(path, ticket.id)))
    for response in responses:
        for name, value in EXPECTED_HEADERS.items():
            assert response.headers.get(name) == value, (response.url, name)
        policy = response.headers["content-security-policy"]
        assert policy == CSP
        assert policy.startswith(
            "default-src 'self'; script-src 'self'; style-src 'self'; "
            "img-src 'self' data:; frame-ancestors 'none'"
        )
        assert "unsafe-inline" not in policy


def test_templates_and_script_never_inline_code_or_build_html() -> None:
    for template in (CONSOLE / "templates").glob("*.html"):
        html = template.read_text(encoding="utf-8")
        for script in re.findall(r"<script[^>]*>", html):
            assert "src=" in script, template.name
        assert re.search(r"<script[^>]*>\s*[^<\s]", html) is None, template.name
        assert "style=" not in html and "<style" not in html, template.name
        assert re.search(r"\son[a-z]+\s*=", html) is None, template.name
        assert "|safe" not in html and "autoescape false" not in html, template.name
    script = (CONSOLE / "static" / "console.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
        assert sink not in script
    assert "eval(" not in script and "new Function" not in script


@pytest.mark.parametrize(
    "path", ["/console/api/queue", "/console/api/tickets/1", "/console/queue"]
)
def test_a_session_left_idle_no_longer_works(console: Console, path: str) -> None:
    agent = console.agent("andi")
    browser = console.login(agent)
    console.ticket()

    def age(session: Any) -> None:
        row = session.execute(select(AgentSession)).scalar_one()
        row.last_seen_at = row.last_seen_at.replace(year=row.last_seen_at.year - 1)

    console.run(age)
    response = console.get(browser, path)
    assert response.status_code in (303, 401)
    assert console.run(lambda s: s.execute(select(AgentSession)).all()) == []
