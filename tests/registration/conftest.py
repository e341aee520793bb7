"""Registration desk fixtures: one database per module on SQLite and PostgreSQL.

The schema is built by the gateway's own migration step
(`bot.schema.upgrade`), so the gateway's `conversation` table and the
registry live in one database, as in production. Every test starts with empty
tables, a clock frozen at :data:`START` (naive UTC) and the policy "2020".
Callers come from `conversation` rows (`converse`), as Rasa's sender id does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import bot.registry.models  # noqa: F401  (registers the registry tables)
from bot.db import Base, make_engine, make_sessionmaker
from bot.messages.models import Conversation
from bot.messages.pseudonym import pseudonym
from bot.policy.programme import Policy, load_policy
from bot.registration.desk import Caller, Details, RegistrationDesk, Submission
from bot.registry import BatchInfo, ensure_batch, set_step
from bot.registry.models import (
    JOB_DONE,
    JOB_NIK,
    JOB_QUEUED,
    STEP_DONE,
    STEP_FAILED,
    STEP_NIK,
    VerificationJob,
)
from bot.schema import upgrade
from tests.postgres import BACKENDS, fresh_database

PSEUDONYM_KEY = "registration-test-pseudonym-key"
SECRET = b"registration-test-code-secret-0123"
START = datetime(2026, 11, 20, 3, 0)  # naive UTC: 10.00 WIB
BORN = date(1990, 8, 15)
KK = "3174010101200001"
EMAIL = "siti.rahayu@gmail.com"
NAME = "SITI RAHAYU"
PHONE = "+6281234567890"
OTHER_PHONE = "+6281298765432"
CHAT = "4242"
OTHER_CHAT = "4343"


class FakeClock:
    """Naive-UTC time that moves only when a test says so."""

    def __init__(self, now: datetime) -> None:
        """Start at `now`."""
        self.now = now

    def __call__(self) -> datetime:
        """The current (frozen) time."""
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward (`minutes=16`, `hours=1`...)."""
        self.now += timedelta(**delta)


class PolicyChoice:
    """The active policy, switchable by a test (`version`)."""

    def __init__(self, version: str) -> None:
        """Start on `version`."""
        self.version = version

    def __call__(self) -> Policy:
        """The chosen policy version."""
        return load_policy(self.version)


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database for this module, on each backend in turn."""
    directory = tmp_path_factory.mktemp("registration")
    with fresh_database(request.param, directory, "registration_test") as url:
        yield url


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the module's database, migrated as the gateway does."""
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker:
    """Sessions on empty tables (gateway and registry)."""
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    return make_sessionmaker(engine)


@pytest.fixture
def clock() -> FakeClock:
    """The desk's clock, frozen at :data:`START`."""
    return FakeClock(START)


@pytest.fixture
def policy() -> PolicyChoice:
    """The desk's policy: "2020" (no KK cap, no maximum age) unless changed."""
    return PolicyChoice("2020")


@pytest.fixture
def desk(
    sessions: sessionmaker, clock: FakeClock, policy: PolicyChoice
) -> RegistrationDesk:
    """A registration desk over the test database."""
    return RegistrationDesk(sessions, SECRET, policy, clock=clock)


@pytest.fixture
def converse(sessions: sessionmaker) -> Callable[[str, str], str]:
    """Store a gateway conversation for (channel, address); its pseudonym."""

    def store(channel: str, address: str) -> str:
        alias = pseudonym(PSEUDONYM_KEY, channel, address)
        with sessions() as session, session.begin():
            session.add(
                Conversation(
                    channel=channel, address=address, pseudonym=alias, state={}
                )
            )
        return alias

    return store


# --- helpers ---------------------------------------------------------------------


def nik(serial: int) -> str:
    """A structurally valid NIK of someone born 15 August 1990 (Jakarta Timur)."""
    return f"317401150890{serial:04d}"


def details(serial: int = 1, **changes: object) -> Details:
    """What a completed registration form holds (NIK number `serial`)."""
    base = Details(
        full_name=NAME, email=EMAIL, nik=nik(serial), kk_number=KK, birth_date=BORN
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def caller_of(desk: RegistrationDesk, alias: str) -> Caller:
    """The caller of a stored conversation (fresh: links show at once)."""
    found = desk.caller(alias)
    assert found is not None
    return found


def prove_email(desk: RegistrationDesk, caller: Caller, email: str = EMAIL) -> None:
    """Request a code for `email` and type it back, as the form does."""
    request = desk.request_email_code(caller, email)
    assert request.code is not None
    assert desk.check_email_code(caller, request.code).ok


def register(
    desk: RegistrationDesk, caller: Caller, serial: int = 1, **changes: object
) -> Submission:
    """Consent, prove the e-mail and submit the form for NIK `serial`."""
    form = details(serial, **changes)
    desk.give_consent(caller)
    prove_email(desk, caller, form.email or EMAIL)
    return desk.submit(caller, form)


def finish_nik_check(
    sessions: sessionmaker, applicant_id: int, now: datetime, reason: str | None = None
) -> None:
    """End the applicant's queued NIK job as the check runner would: step done,
    or failed with `reason`."""
    with sessions() as session, session.begin():
        session.execute(
            update(VerificationJob.__table__)
            .where(
                VerificationJob.applicant_id == applicant_id,
                VerificationJob.kind == JOB_NIK,
                VerificationJob.status == JOB_QUEUED,
            )
            .values(status=JOB_DONE, result_code=reason or "verified", finished_at=now)
        )
        status = STEP_FAILED if reason else STEP_DONE
        set_step(session, applicant_id, STEP_NIK, status, reason=reason, now=now)


def add_batch(
    sessions: Callable[[], Session],
    number: int,
    opens: datetime,
    closes: datetime,
    quota: int = 100,
) -> BatchInfo:
    """Store batch (gelombang) `number`."""
    with sessions() as session, session.begin():
        return ensure_batch(session, number, opens, closes, quota)
