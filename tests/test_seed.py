"""`python -m bot.seed` on SQLite and PostgreSQL, and the README's test people."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.clock import WIB
from bot.db import make_engine, make_sessionmaker
from bot.policy.programme import load_policy
from bot.registry import BatchInfo, open_batches
from bot.registry.models import Batch
from bot.seed import DEMO_BATCH_DAYS, DEMO_BATCH_QUOTA, SeedSummary, seed
from bot.settings import Settings, load_settings
from bot.verification.models import PopulationPerson
from bot.verification.population import POPULATION, TEST_PEOPLE
from tests.registry.conftest import BACKENDS, fresh_database

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 27, 3, 30)  # naive UTC: 10.30 WIB
POLICY = load_policy("2020")  # one historical wave, number 1


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Development settings on a new empty database of each backend."""
    with fresh_database(request.param, tmp_path) as url:
        yield load_settings(
            {
                "PRAKERJA_ENV": "development",
                "PRAKERJA_VAR_DIR": str(tmp_path / "var"),
                "DATABASE_URL": url,
            }
        )


def population_count(settings: Settings) -> int:
    """Rows in `population_person`."""
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(PopulationPerson.__table__)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def batches_open(settings: Settings, now: datetime = NOW) -> list[BatchInfo]:
    """The batches open at ``now`` with places left."""
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return open_batches(session, now)
    finally:
        engine.dispose()


def run(settings: Settings, now: datetime = NOW) -> SeedSummary:
    return seed(settings, policy=POLICY, now=now)


def test_seed_fills_the_population_and_opens_a_batch(settings: Settings) -> None:
    summary = run(settings)
    assert summary.population == len(POPULATION) == population_count(settings)
    assert summary.policy_batches == 1
    current, following = summary.open_batch, summary.next_batch
    assert current is not None and following is not None
    assert [b.number for b in batches_open(settings)] == [current.number] == [2]
    assert current.opens_at == NOW - timedelta(hours=1)
    assert current.closes_at - current.opens_at == timedelta(days=DEMO_BATCH_DAYS)
    assert current.quota == following.quota == DEMO_BATCH_QUOTA
    assert following.number == 3 and following.opens_at == current.closes_at
    assert following.closes_at - following.opens_at == timedelta(days=DEMO_BATCH_DAYS)
    assert summary.batch_count == 3 and summary.batches_created == 3


def test_seed_twice_creates_nothing(settings: Settings) -> None:
    first = run(settings)
    second = run(settings, NOW + timedelta(minutes=5))
    assert second.batches_created == 0
    assert second.batch_count == first.batch_count
    assert second.open_batch == first.open_batch
    assert second.next_batch == first.next_batch
    assert len(batches_open(settings)) == 1
    assert population_count(settings) == len(POPULATION)


def test_when_the_demo_batch_closes_the_next_one_is_open(settings: Settings) -> None:
    first = run(settings)
    assert first.open_batch is not None and first.next_batch is not None
    later = first.open_batch.closes_at + timedelta(hours=1)
    second = run(settings, later)
    assert second.open_batch == first.next_batch
    assert second.next_batch is not None and second.next_batch.number == 4
    assert second.batches_created == 1
    assert [b.number for b in batches_open(settings, later)] == [3]


def test_a_full_open_batch_gets_a_new_one(settings: Settings) -> None:
    first = run(settings)
    assert first.open_batch is not None
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as connection:
            table = Batch.__table__
            connection.execute(
                update(table)
                .where(table.c.number == first.open_batch.number)
                .values(joined_count=table.c.quota)
            )
    finally:
        engine.dispose()
    second = run(settings)
    assert second.open_batch is not None and second.open_batch.number == 4
    assert second.next_batch is not None and second.next_batch.number == 5
    assert [b.number for b in batches_open(settings)] == [4]


def test_the_summary_shows_the_closing_time_in_wib(settings: Settings) -> None:
    summary = run(settings)
    assert summary.open_batch is not None
    closes = summary.open_batch.closes_at.replace(tzinfo=timezone.utc).astimezone(WIB)
    line = summary.line()
    assert "\n" not in line
    assert f"batch 2 open until {closes:%d-%m-%Y %H:%M} WIB" in line
    assert "11-12-2026 09:30 WIB" in line  # opened 27-11 09.30 WIB, 14 days
    assert f"population {len(POPULATION)}" in line


def test_seed_refuses_the_population_outside_development(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    production = replace(settings, environment="production")
    caplog.set_level(logging.WARNING, logger="bot.seed")
    summary = run(production)
    assert summary.population is None
    assert population_count(settings) == 0
    assert any(
        "not seeding the synthetic NIK population" in record.getMessage()
        and "NIK_VERIFIER_URL" in record.getMessage()
        for record in caplog.records
    )
    # The policy's schedule only: no demo batch outside development.
    assert summary.batch_count == summary.policy_batches == 1
    assert summary.open_batch is None and batches_open(settings) == []
    assert "not seeded" in summary.line()


def test_python_m_bot_seed(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PRAKERJA_ENV": "development",
        "PRAKERJA_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/seed.db",
        "PRAKERJA_POLICY": "2021",
    }
    command = [sys.executable, "-m", "bot.seed"]
    done = subprocess.run(  # noqa: S603
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seed (development, policy 2021)")
    assert f"population {len(POPULATION)};" in lines[0]
    assert "batch 1 open until" in lines[0] and "next batch 2" in lines[0]


def test_python_m_bot_seed_stops_on_bad_settings(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PRAKERJA_ENV": "production",
        "PRAKERJA_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/seed.db",
    }
    for name in ("PSEUDONYM_KEY", "SMTP_URL", "NIK_VERIFIER_URL"):
        env.pop(name, None)
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bot.seed"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "NIK_VERIFIER_URL must be set" in done.stderr
    assert not (tmp_path / "seed.db").exists()


# --- README ----------------------------------------------------------------------


def readme_test_people() -> list[tuple[str, str, str, date, str]]:
    """The rows of the README's "## Test people" table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Test people\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, "README has no '## Test people' section"
    people = []
    for line in match.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] == "Name" or set(cells[0]) <= {"-"}:
            continue
        name, nik, kk, born, outcome = cells[:5]
        people.append(
            (
                name,
                nik.strip("`"),
                kk.strip("`"),
                datetime.strptime(born, "%d-%m-%Y").date(),
                outcome.strip("`"),
            )
        )
    return people


def test_readme_lists_exactly_the_test_people() -> None:
    expected = [
        (p.full_name, p.nik, p.kk_number, p.birth_date, p.outcome) for p in TEST_PEOPLE
    ]
    assert readme_test_people() == expected


def test_readme_marks_pass_fail_and_pending() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Test people", 1)[1].split("\n## ", 1)[0]
    rows = {
        line.split("|")[1].strip(): line
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| Name")
    }
    assert "**Passes.**" in rows["BUDI SANTOSO"]
    assert "**Fails verification.**" in rows["YUSUF MAULANA"]
    assert "**Stays pending" in rows["INDAH PERMATASARI"]
    assert "var/email-outbox/" in section and "make mail" in section
    assert "make run" in section


EVENTS_AS_RASA_MAKES_IT = (
    "CREATE TABLE events (id serial PRIMARY KEY, sender_id varchar(255) NOT NULL,"
    " type_name varchar(255) NOT NULL, timestamp float, intent_name varchar(255),"
    " action_name varchar(255), data text)"
)


def _event_indexes(url: str) -> set[str] | None:
    """The `events` table's index names; None without the table."""
    from sqlalchemy import inspect

    engine = make_engine(url)
    try:
        if not inspect(engine).has_table("events"):
            return None
        return {str(i["name"]) for i in inspect(engine).get_indexes("events")}
    finally:
        engine.dispose()


def test_the_migration_job_gives_a_postgresql_tracker_store_its_index(
    tmp_path: Path,
) -> None:
    """So that no Rasa server builds it as it starts (bot.tracker_index); a
    tracker store without its table yet is left to Rasa, which makes both."""
    from sqlalchemy import text

    from bot.tracker_index import SENDER_EVENTS_INDEX
    from tests.postgres import postgres_database

    with postgres_database("seed_tracker") as url:
        env = {
            "PRAKERJA_ENV": "development",
            "PRAKERJA_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": url,
            "TRACKER_STORE_URL": url,
        }
        run(load_settings(env))
        assert _event_indexes(url) is None

        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text(EVENTS_AS_RASA_MAKES_IT))
        engine.dispose()
        run(load_settings(env))
        run(load_settings(env))  # made once

        assert SENDER_EVENTS_INDEX in (_event_indexes(url) or set())
