"""Handoff test fixtures: the same tests on a SQLite file and on PostgreSQL.

Each test module gets its own database per backend, built by the migrations
(`alembic upgrade heads`), and every test starts with no conversations, tickets
or applicants. PostgreSQL is `postgresql://postgres@127.0.0.1:5432/test`
(`TEST_POSTGRES_URL` overrides it); unreachable: skipped with the reason, or
failed under CI=true.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.db import Base, make_engine, make_sessionmaker
from bot.messages.inbox import conversation_id
from tests.postgres import BACKENDS, fresh_database
from tests.registry.conftest import concurrently, upgrade

__all__ = ["concurrently"]

TABLES = (  # children first; the rest cascades or stays empty
    "ticket_note",
    "ticket",
    "outbox_message",
    "inbox_message",
    "conversation",
    "channel_identity",
    "applicant",
)
KEY = "handoff-test-pseudonym-key"
T0 = datetime(2026, 11, 30, 3, 0)  # Monday 10:00 WIB
"""A moment inside agent hours (naive UTC, as stored)."""


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database for this module, on each backend in turn."""
    with fresh_database(
        request.param, tmp_path_factory.mktemp("handoff"), "handoff_test"
    ) as url:
        yield url


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the module's database, schema built by the migrations."""
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker:
    """Sessions on empty tables."""
    with engine.begin() as connection:
        for table in TABLES:
            connection.execute(delete(Base.metadata.tables[table]))
    return make_sessionmaker(engine)


@pytest.fixture
def session(sessions: sessionmaker) -> Iterator[Session]:
    """One session for a test's sequential steps (commit as the code would)."""
    with sessions() as session:
        yield session


def conversation(session: Session, address: str, channel: str = "telegram") -> int:
    """A conversation of `channel` with `address` (committed); its id."""
    found = conversation_id(session, channel, address, KEY)
    session.commit()
    return found
