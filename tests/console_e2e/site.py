"""The whole stack behind the agents' console, for its browser test and screenshots.

Rasa (the trained model), the action server and the gateway (which serves the
console) run for real against one seeded SQLite database; only Twilio's REST API
is a local fake. Console accounts are made with the admin command line, as an
operator would. A few demo registrations give the supervisor's funnel data, and
one of them is the SMS user's, so the ticket shows a registration panel.
Chromium is Debian's (Playwright cannot download a browser here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ViewportSize, sync_playwright
from sqlalchemy.orm import Session

from bot.channels.base import SMS
from bot.db import make_engine, make_sessionmaker, utcnow
from bot.registry import (
    batch_by_number,
    get_or_create_identity,
    join_batch,
    link_identity,
    record_selection,
    register_applicant,
    set_step,
)
from bot.registry.models import (
    LINK_PHONE,
    RESULT_SELECTED,
    STEP_BATCH,
    STEP_DONE,
    STEP_EMAIL,
    STEP_FAILED,
    STEP_NIK,
    STEP_PENDING,
    STEP_SELECTION,
)
from bot.verification.population import TEST_PEOPLE, TestPerson
from tests.conftest import ROOT
from tests.integration.test_registration_sms import (
    RegistrationSite,
    open_batch_number,
    running_sms_site,
)

PHONE = "+6281234500003"
"""The SMS user who asks for a person (registered: SITI RAHAYU)."""
PASSWORD = "uji-konsol-petugas-2020"  # noqa: S105 (a test account's password)
AGENT_HOURS = "00:00-24:00"  # all day
"""Agents on duty all day, so the test never meets the out-of-hours text
(except in the minute 23:59-00:00 WIB: AGENT_HOURS cannot say 24:00)."""
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""Root in a container needs no sandbox; the rest keeps Chromium off the closed
network (it would retry Google's hosts at every start)."""
VIEWPORT: ViewportSize = {"width": 1366, "height": 900}
"""The browser window: a laptop screen, as agents have."""


@dataclass(frozen=True)
class Account:
    """A console account made with `python -m bot.console.admin`."""

    username: str
    display_name: str
    command: str


AGENT = Account("rina", "Rina Kusuma", "create-agent")
SUPERVISOR = Account("sari", "Sari Wulandari", "create-supervisor")


@dataclass(frozen=True)
class ConsoleSite:
    """The running stack: the SMS side (gateway URL, fake Twilio API, database)
    and the Rasa server's URL (to read a conversation's tracker)."""

    sms: RegistrationSite
    rasa_url: str

    @property
    def base(self) -> str:
        """The gateway's base URL (the console is at /console)."""
        return self.sms.base

    @property
    def database_url(self) -> str:
        """The database the gateway, Rasa's actions and the console share."""
        return self.sms.database_url


def create_account(env: dict[str, str], account: Account) -> None:
    """Run the admin command line with the password in CONSOLE_PASSWORD."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.console.admin",
            account.command,
            account.username,
            "--display-name",
            account.display_name,
        ],
        cwd=ROOT,
        env={**env, "CONSOLE_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"bot.console.admin {account.command} failed:\n{done.stdout}\n{done.stderr}"
        )


@dataclass(frozen=True)
class DemoRegistration:
    """How far one demo applicant got (the funnel's stages, in order)."""

    person: TestPerson
    email_verified: bool = True
    nik: str | None = STEP_DONE  # None: not checked yet; else the step's status
    joined: bool = False
    selected: bool = False
    phone: str | None = None


DEMO_REGISTRATIONS = (
    DemoRegistration(TEST_PEOPLE[0], joined=True, selected=True),
    DemoRegistration(TEST_PEOPLE[1], joined=True, phone=PHONE),
    DemoRegistration(TEST_PEOPLE[2], joined=True),
    DemoRegistration(TEST_PEOPLE[9]),
    DemoRegistration(TEST_PEOPLE[4], nik=STEP_FAILED),
    DemoRegistration(TEST_PEOPLE[3], email_verified=False, nik=None),
)
"""Six registered, five e-mails verified, four NIKs verified, three in a batch,
one selected. The second one is the SMS user."""


def _email_of(person: TestPerson) -> str:
    return person.full_name.lower().replace(" ", ".") + "@example.com"


def seed_registrations(database_url: str, batch_number: int) -> None:
    """Register the demo applicants straight in the registry (one transaction);
    the SMS user's number is linked as their registered phone."""
    engine = make_engine(database_url)
    now = utcnow()
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            batch = batch_by_number(session, batch_number)
            assert batch is not None, f"no batch {batch_number}"
            for index, demo in enumerate(DEMO_REGISTRATIONS):
                _register(
                    session, demo, batch.id, now - timedelta(minutes=5 * (index + 1))
                )
    finally:
        engine.dispose()


def _register(
    session: Session, demo: DemoRegistration, batch_id: int, at: datetime
) -> None:
    """One demo applicant, as far as ``demo`` says."""
    person = demo.person
    applicant = register_applicant(
        session,
        nik=person.nik,
        kk_number=person.kk_number,
        full_name=person.full_name,
        birth_date=person.birth_date,
        policy_version="2020",
        email=_email_of(person),
        email_verified_at=at if demo.email_verified else None,
        phone=demo.phone,
        now=at,
    )
    if demo.email_verified:
        set_step(session, applicant.id, STEP_EMAIL, STEP_DONE, now=at)
    if demo.nik == STEP_FAILED:
        set_step(
            session, applicant.id, STEP_NIK, STEP_FAILED, reason=person.outcome, now=at
        )
    elif demo.nik is not None:
        set_step(session, applicant.id, STEP_NIK, demo.nik, now=at)
    if demo.joined:
        join_batch(session, applicant.id, batch_id, now=at)
        set_step(session, applicant.id, STEP_BATCH, STEP_DONE, now=at)
        set_step(session, applicant.id, STEP_SELECTION, STEP_PENDING, now=at)
    if demo.selected:
        record_selection(session, applicant.id, batch_id, RESULT_SELECTED, now=at)
        set_step(session, applicant.id, STEP_SELECTION, STEP_DONE, now=at)
    if demo.phone is not None:
        identity = get_or_create_identity(session, SMS, demo.phone, now=at)
        link_identity(session, identity.id, applicant.id, LINK_PHONE, now=at)


@contextmanager
def running_console_site(work: Path) -> Iterator[ConsoleSite]:
    """Seed a fresh database in ``work``, make the console accounts and the demo
    registrations (while Rasa loads), and run the fake Twilio API, Rasa, the
    actions and the gateway until exit (their logs go to ``work``)."""
    database_url = f"sqlite:///{work}/gateway.db"
    outbox = work / "email-outbox"
    shared = {
        "PRAKERJA_ENV": "test",
        "PRAKERJA_POLICY": "2020",
        "PRAKERJA_VAR_DIR": str(work),
        "DATABASE_URL": database_url,
        "EMAIL_OUTBOX_DIR": str(outbox),
        "PSEUDONYM_KEY": "console-e2e-test-key",
        "SMTP_URL": "",
        "NIK_VERIFIER_URL": "",
        "AGENT_HOURS": AGENT_HOURS,
        "AGENT_DAYS": "1-7",
    }
    env = {**os.environ, **shared}

    def prepare() -> None:
        for account in (AGENT, SUPERVISOR):
            create_account(env, account)
        seed_registrations(database_url, open_batch_number(database_url))

    with running_sms_site(work, shared, tracker=False, prepare=prepare) as (
        sms,
        stack,
    ):
        yield ConsoleSite(sms, stack.rasa_url)


def chromium_path() -> str | None:
    """Debian's Chromium, if installed."""
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def require_chromium() -> str:
    """Chromium's path; skip without it (fail under CI=true, where .ci/run
    installs it)."""
    path = chromium_path()
    if path is not None:
        return path
    why = "Debian's chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; .ci/run installs it under CI")
    pytest.skip(why)


@contextmanager
def launched_chromium(executable: str) -> Iterator[Browser]:
    """Headless Chromium driven by Playwright until exit."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()
