"""Registry test fixtures: the same tests on a SQLite file and on PostgreSQL.

Each test module gets its own database per backend, built with `alembic upgrade
heads` (so every test also exercises the migration), and every test starts with
empty registry tables. PostgreSQL is `postgresql://postgres@127.0.0.1:5432/test`
(`TEST_POSTGRES_URL` overrides it); a fresh database is created per module and
dropped afterwards. Unreachable: skipped with the reason, or failed under CI=true.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import bot.registry.models as models
import bot.selection.models  # noqa: F401  (registers the batch runs and notices)
from bot.db import make_engine, make_sessionmaker
from bot.registry import ApplicantInfo, register_applicant
from tests.postgres import BACKENDS, fresh_database

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_TABLES = (  # children first
    "due_notice",
    "announcement_message",
    "batch_run",
    "email_code",
    "verification_job",
    "batch_membership",
    "registration_step",
    "consent_record",
    "channel_identity",
    "kk_count",
    "batch",
    "applicant",
)
KK = "3174010101200001"


def alembic_config(url: str) -> Config:
    """The project's Alembic configuration pointed at `url` (logging untouched)."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


def upgrade(url: str) -> None:
    """`alembic upgrade heads` (heads: still right while another branch waits to
    be chained after 0001)."""
    command.upgrade(alembic_config(url), "heads")


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database for this module, on each backend in turn."""
    with fresh_database(
        request.param, tmp_path_factory.mktemp("registry"), "registry_test"
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
    """Sessions on empty registry tables."""
    with engine.begin() as connection:
        for table in REGISTRY_TABLES:
            connection.execute(delete(models.Base.metadata.tables[table]))
    return make_sessionmaker(engine)


@pytest.fixture
def session(sessions: sessionmaker) -> Iterator[Session]:
    """One session for a test's sequential steps (commit as the code would)."""
    with sessions() as session:
        yield session


def nik(serial: int, day: int = 15) -> str:
    """A structurally valid NIK (Jakarta Timur, born `day` August 1990)."""
    return f"317401{day:02d}0890{serial:04d}"


def register(
    session: Session, serial: int, kk: str = KK, **extra: Any
) -> ApplicantInfo:
    """Register applicant number `serial` (committed)."""
    values: dict[str, Any] = {
        "nik": nik(serial),
        "kk_number": kk,
        "full_name": f"Pelamar {serial}",
        "birth_date": date(1990, 8, 15),
        "policy_version": "2020",
        **extra,
    }
    applicant = register_applicant(session, **values)
    session.commit()
    return applicant


def concurrently(
    count: int, work: Callable[[int], Any], timeout: float = 120.0
) -> list[Any]:
    """Run `work(i)` for i in range(count) in threads released together; each
    result or the exception it raised, in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout)
            results[index] = work(index)
        except BaseException as exc:  # collected for the test to inspect
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a worker thread hung"
    return results
