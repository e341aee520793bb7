"""Console test fixtures: a running gateway app, agents, tickets, logged-in browsers.

The app is the real gateway (`create_app`, lifespan running: worker and outbox
loops included) with a fake Rasa and fake senders, on a SQLite file or on a
PostgreSQL database. The test client speaks https (the settings' public URL is
https, so the session cookie is Secure and would not be sent over http).
Each `Browser` is one agent's cookie and CSRF token, sent explicitly per
request, so several agents can share the one client. Password hashing uses
cheap argon2id parameters (still argon2id) to keep the tests fast.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import insert
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

import bot.console.passwords as passwords
from bot.console.agents import AgentInfo, create_agent
from bot.console.app import PUBLIC_PATHS
from bot.console.sessions import COOKIE_NAME
from bot.db import make_engine, make_sessionmaker, utcnow
from bot.gateway.app import create_app
from bot.handoff import tickets
from bot.handoff.records import TicketInfo
from bot.messages.inbox import conversation_id
from bot.messages.models import INBOX_DONE, InboxMessage
from bot.registry import link_identity, register_applicant
from bot.registry.identities import get_or_create_identity
from bot.registry.models import LINK_PHONE, STEP_FAILED, STEP_NIK
from bot.registry.steps import set_step
from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import (
    FAST,
    PSEUDONYM_KEY,
    FakeSender,
    actions,
    make_settings,
    rasa,
)
from tests.postgres import fresh_database

__all__ = ["actions", "rasa"]

BASE_URL = "https://testserver"
PASSWORD = "kata-sandi-uji-yang-panjang"
SMS_PHONE = "+6281234567890"
NIK = "3174011508900001"
KK = "3174010101200001"
HOSTILE = (
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
)


def console_routes(app: Any) -> list[tuple[str, str]]:
    """(path, method) of every route mounted under /console."""
    mounts = [r for r in app.routes if isinstance(r, Mount) and r.path == "/console"]
    assert len(mounts) == 1
    found = []
    for route in mounts[0].routes:
        if isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    found.append((route.path, method))
    return found


def concrete(path: str, ticket_id: int) -> str:
    """The route's path with its parameters filled in."""
    return "/console" + re.sub(r"\{(ticket|batch)_id(:int)?\}", str(ticket_id), path)


def guarded(app: Any) -> list[tuple[str, str]]:
    """The routes that must require a session (all but the public ones)."""
    return [(p, m) for p, m in console_routes(app) if p not in PUBLIC_PATHS]


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with small parameters (the production ones take ~0.25 s)."""
    monkeypatch.setattr(
        passwords,
        "HASHER",
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend (modules that need both override this fixture)."""
    return str(request.param)


@pytest.fixture
def settings(
    tmp_path: Path, rasa: FakeRasa, actions: Any, backend: str
) -> Iterator[Settings]:
    """Test settings (https public URL) on a fresh database of `backend`."""
    with fresh_database(backend, tmp_path, "console_test") as url:
        yield make_settings(
            tmp_path, rasa.url, database_url=url, actions_url=actions.url
        )


@dataclass
class Browser:
    """One logged-in agent: the session cookie and the page's CSRF token."""

    agent: AgentInfo
    token: str
    csrf: str

    def headers(self, **extra: str) -> dict[str, str]:
        """Headers carrying this agent's cookie (and any extra ones)."""
        return {"Cookie": f"{COOKIE_NAME}={self.token}", **extra}


class Console:
    """The running app, its database, and helpers to act as agents."""

    def __init__(self, client: TestClient, settings: Settings, sms: FakeSender):
        self.client = client
        self.origin = str(client.base_url).rstrip("/")
        self.settings = settings
        self.sms = sms
        self.engine = make_engine(settings.database_url)
        self.sessions = make_sessionmaker(self.engine)

    # --- accounts ---------------------------------------------------------------

    def agent(self, username: str, role: str = "agent") -> AgentInfo:
        """Create an agent with the test password (committed)."""
        with self.sessions() as session:
            agent = create_agent(session, username, PASSWORD, role, username.title())
            session.commit()
        return agent

    def login(self, agent: AgentInfo, password: str = PASSWORD) -> Browser:
        """Log in through the form as a browser does; the agent's browser."""
        token, response = self.post_login(agent.username, password)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/console/queue"
        session_token = response.cookies.get(COOKIE_NAME)
        self.client.cookies.clear()
        assert session_token
        page = self.client.get(
            "/console/queue", headers={"Cookie": f"{COOKIE_NAME}={session_token}"}
        )
        assert page.status_code == 200, page.text
        match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
        assert match
        return Browser(agent, session_token, match.group(1))

    def post_login(self, username: str, password: str) -> tuple[str, Any]:
        """GET the login form, then POST it with its token; (token, response)."""
        self.client.cookies.clear()
        form = self.client.get("/console/login")
        assert form.status_code == 200
        login_token = form.cookies.get("console_login")
        assert login_token
        response = self.client.post(
            "/console/login",
            data={"csrf": login_token, "username": username, "password": password},
            headers={"Origin": self.origin, "Cookie": f"console_login={login_token}"},
            follow_redirects=False,
        )
        return login_token, response

    # --- requests as an agent ---------------------------------------------------

    def get(self, browser: Browser | None, path: str, **kwargs: Any) -> Any:
        """GET as `browser` (None: anonymous), without following redirects."""
        self.client.cookies.clear()
        headers = browser.headers() if browser else {}
        headers.update(kwargs.pop("headers", {}))
        return self.client.get(path, headers=headers, follow_redirects=False, **kwargs)

    def post(
        self,
        browser: Browser | None,
        path: str,
        data: dict[str, str] | None = None,
        csrf: str | None = "session",
        **kwargs: Any,
    ) -> Any:
        """POST a form as `browser` with its CSRF token (`csrf=None`: without;
        any other string: that token), from this site's origin."""
        self.client.cookies.clear()
        headers = (
            browser.headers(Origin=self.origin) if browser else {"Origin": self.origin}
        )
        headers.update(kwargs.pop("headers", {}))
        form = dict(data or {})
        if csrf == "session" and browser is not None:
            form["csrf"] = browser.csrf
        elif csrf not in (None, "session"):
            form["csrf"] = str(csrf)
        return self.client.post(
            path, data=form, headers=headers, follow_redirects=False, **kwargs
        )

    def post_json(
        self, browser: Browser, path: str, body: dict[str, Any], csrf: bool = True
    ) -> Any:
        """POST JSON as the page's script does (CSRF in the header)."""
        self.client.cookies.clear()
        headers = browser.headers(Origin=self.origin, Accept="application/json")
        if csrf:
            headers["X-CSRF-Token"] = browser.csrf
        return self.client.post(
            path, json=body, headers=headers, follow_redirects=False
        )

    # --- conversations and tickets ----------------------------------------------

    def conversation(
        self, address: str, channel: str = "sms", texts: tuple[str, ...] = ()
    ) -> int:
        """A conversation with the person's messages already handled (done)."""
        with self.sessions() as session:
            found = conversation_id(session, channel, address, PSEUDONYM_KEY)
            for text in texts:
                session.execute(
                    insert(InboxMessage.__table__).values(
                        channel=channel,
                        provider_id=f"test-{uuid.uuid4().hex}",
                        conversation_id=found,
                        text=text,
                        status=INBOX_DONE,
                        attempts=1,
                        received_at=utcnow(),
                        processed_at=utcnow(),
                    )
                )
            session.commit()
        return found

    def ticket(
        self,
        address: str = SMS_PHONE,
        channel: str = "sms",
        texts: tuple[str, ...] = ("saya mau bicara dengan petugas",),
        reason: str = "request_human",
        applicant_id: int | None = None,
    ) -> TicketInfo:
        """An open ticket in a new conversation with `texts` from the person."""
        conversation = self.conversation(address, channel, texts)
        with self.sessions() as session:
            ticket, _ = tickets.open_ticket(session, conversation, reason, applicant_id)
            session.commit()
        return ticket

    def applicant(self, phone: str = SMS_PHONE) -> int:
        """A registered applicant owning the SMS identity of `phone`, whose NIK
        check failed (committed); its id."""
        with self.sessions() as session:
            applicant = register_applicant(
                session,
                nik=NIK,
                kk_number=KK,
                full_name="Budi Santoso",
                birth_date=date(1990, 8, 15),
                email="budi.santoso@example.com",
                phone=phone,
                policy_version="2020",
            )
            identity = get_or_create_identity(session, "sms", phone)
            link_identity(session, identity.id, applicant.id, LINK_PHONE)
            set_step(session, applicant.id, STEP_NIK, STEP_FAILED, "data_mismatch")
            session.commit()
        return applicant.id

    def run(self, work: Any) -> Any:
        """Run `work(session)` in a committed session; its result."""
        with self.sessions() as session:
            result = work(session)
            session.commit()
        return result

    def close(self) -> None:
        """Close the test's own connections."""
        self.engine.dispose()


@pytest.fixture
def console(settings: Settings) -> Iterator[Console]:
    """The gateway app running on the test database, with a fake SMS sender."""
    sms = FakeSender("sms")
    app = create_app(settings, options=FAST, senders={"sms": sms})
    with TestClient(app, base_url=BASE_URL) as client:
        helper = Console(client, settings, sms)
        try:
            yield helper
        finally:
            helper.close()
