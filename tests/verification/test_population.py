"""LocalPopulationVerifier over `population_person`, on SQLite and PostgreSQL.

Each module database is built by the migrations; every test starts from empty
registry tables and a freshly seeded population.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, delete, inspect, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.db import Base, make_engine, make_sessionmaker
from bot.policy.validation import nik_birth_date_matches, validate_kk, validate_nik
from bot.registry import register_applicant
from bot.verification.models import PopulationPerson
from bot.verification.nik import OUTCOMES, REASONS, NikCheckResult, result_for
from bot.verification.options import NikCheckOptions
from bot.verification.population import (
    POPULATION,
    SLOW_CHECK_SECONDS,
    TEST_PEOPLE,
    LocalPopulationVerifier,
    Person,
    TestPerson,
    seed_population,
)
from tests.registry.conftest import (
    BACKENDS,
    REGISTRY_TABLES,
    alembic_config,
    fresh_database,
    upgrade,
)

BUDI, SITI = TEST_PEOPLE[0], TEST_PEOPLE[1]
SLOW_NIKS = {p.nik for p in POPULATION if p.check_delay_seconds > 0}
SLOW = next(p for p in TEST_PEOPLE if p.nik in SLOW_NIKS)
KK_FULL = next(p for p in TEST_PEOPLE if p.outcome == "kk_full")
KK_CAP = 2  # policies 2021 and 2023
TABLE = "population_person"


class SleepRecorder:
    """Stands in for asyncio.sleep: records delays, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class HeldSleep:
    """A sleep that lasts until the test releases it."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.started.set()
        await self.release.wait()


@pytest.fixture(scope="module", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated database for this module, on each backend in turn."""
    with fresh_database(request.param, tmp_path_factory.mktemp("population")) as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker:
    """Sessions on empty registry tables and a freshly seeded population."""
    with engine.begin() as connection:
        for table in (*REGISTRY_TABLES, TABLE):
            connection.execute(delete(Base.metadata.tables[table]))
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        seed_population(session)
    return sessions


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def local(sessions: sessionmaker, sleeps: SleepRecorder) -> LocalPopulationVerifier:
    return LocalPopulationVerifier(sessions, kk_cap=KK_CAP, sleep=sleeps)


def rows(sessions: sessionmaker) -> list[dict[str, Any]]:
    """Every population row, by NIK, as plain values."""
    table = PopulationPerson.__table__
    with sessions() as session:
        found = session.execute(select(table).order_by(table.c.nik)).all()
    return [
        {**row._asdict(), "check_delay_seconds": float(row.check_delay_seconds)}
        for row in found
    ]


def register_on_kk(session: Session, person: TestPerson, serials: range) -> None:
    """Register other applicants on ``person``'s KK (no cap here), committed."""
    for serial in serials:
        register_applicant(
            session,
            nik=f"{person.nik[:12]}{9000 + serial:04d}",
            kk_number=person.kk_number,
            full_name=f"Keluarga {serial}",
            birth_date=person.birth_date,
            policy_version="2021",
        )
    session.commit()


def register_self(session: Session, person: TestPerson) -> None:
    """Register ``person`` here as the registration flow does (KK slot reserved
    before the NIK check), committed."""
    register_applicant(
        session,
        nik=person.nik,
        kk_number=person.kk_number,
        full_name=person.full_name,
        birth_date=person.birth_date,
        policy_version="2021",
    )
    session.commit()


# --- the data ---------------------------------------------------------------------

NUMBERS = [(p.nik, p.kk_number, p.birth_date) for p in TEST_PEOPLE] + [
    (p.nik, p.kk_number, p.birth_date) for p in POPULATION
]


@pytest.mark.parametrize("nik, kk, born", NUMBERS)
def test_numbers_are_structurally_valid(nik: str, kk: str, born: date) -> None:
    assert validate_nik(nik).valid, validate_nik(nik).error
    assert validate_kk(kk).valid
    assert kk[:6] == nik[:6]  # same province/regency/district
    assert nik_birth_date_matches(nik, born)


def test_women_carry_day_plus_forty() -> None:
    check = validate_nik(SITI.nik)
    assert check.female and int(SITI.nik[6:8]) == SITI.birth_date.day + 40


def test_every_refusal_has_a_person_and_three_are_verified() -> None:
    outcomes = [p.outcome for p in TEST_PEOPLE]
    assert set(outcomes) == set(OUTCOMES) - {"unavailable"}
    assert outcomes.count("verified") >= 3
    assert len({p.nik for p in TEST_PEOPLE}) == len(TEST_PEOPLE)
    assert SLOW.outcome == "verified" and len(SLOW_NIKS) == 1


def test_the_slow_person_is_slow_enough_to_see_pending() -> None:
    slow = next(p for p in POPULATION if p.nik == SLOW.nik)
    assert slow.check_delay_seconds == SLOW_CHECK_SECONDS >= 10


def test_the_slow_person_finishes_within_the_runner_timeout() -> None:
    """A check slower than the runner's timeout would be retried forever."""
    assert NikCheckOptions().timeout > SLOW_CHECK_SECONDS


# --- the table and its seed ------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_builds_the_models_table(backend: str, tmp_path: Path) -> None:
    with (
        fresh_database(backend, tmp_path) as migrated,
        fresh_database(backend, tmp_path) as created,
    ):
        upgrade(migrated)
        by_migration, by_models = make_engine(migrated), make_engine(created)
        try:

            def only_population(obj: Any, name: Any, type_: str, *_: Any) -> bool:
                table = obj if type_ == "table" else getattr(obj, "table", None)
                return table is None or table.name == TABLE

            with by_migration.connect() as connection:
                context = MigrationContext.configure(
                    connection, opts={"include_object": only_population}
                )
                assert compare_metadata(context, Base.metadata) == []
            Base.metadata.create_all(by_models, tables=[PopulationPerson.__table__])
            checks = [
                sorted(c["name"] for c in inspect(e).get_check_constraints(TABLE))
                for e in (by_migration, by_models)
            ]
            assert checks[0] == checks[1]
            assert "ck_population_person_family_elsewhere" in checks[0]
            command.downgrade(alembic_config(migrated), "0100")
            assert TABLE not in inspect(by_migration).get_table_names()
            assert "applicant" in inspect(by_migration).get_table_names()
        finally:
            by_migration.dispose()
            by_models.dispose()


def test_seed_fills_the_table_with_the_population(sessions: sessionmaker) -> None:
    expected = sorted((asdict(p) for p in POPULATION), key=lambda r: r["nik"])
    assert rows(sessions) == expected


def test_seed_is_idempotent_and_repairs_changed_rows(sessions: sessionmaker) -> None:
    before = rows(sessions)
    table = PopulationPerson.__table__
    with sessions.begin() as session:
        session.execute(
            update(table)
            .where(table.c.nik == BUDI.nik)
            .values(full_name="BUDI DIUBAH", student=True)
        )
        session.execute(delete(table).where(table.c.nik == SITI.nik))
    with sessions.begin() as session:
        assert seed_population(session) == len(POPULATION)
    with sessions.begin() as session:
        assert seed_population(session) == len(POPULATION)
    assert rows(sessions) == before


def test_seed_leaves_other_people_alone(sessions: sessionmaker) -> None:
    extra = Person("3174011508900099", "3174010101150001", "TAMU", date(1990, 8, 15))
    with sessions.begin() as session:
        seed_population(session, [extra])
    with sessions.begin() as session:
        seed_population(session)
    assert len(rows(sessions)) == len(POPULATION) + 1


def test_table_refuses_bad_rows(sessions: sessionmaker) -> None:
    bad = {
        **asdict(POPULATION[0]),
        "nik": "3174011508900098",
        "check_delay_seconds": -1,
    }
    with pytest.raises(IntegrityError, match="(?i)check"), sessions.begin() as s:
        s.execute(PopulationPerson.__table__.insert().values(**bad))


# --- the verifier ----------------------------------------------------------------


@pytest.mark.parametrize("person", TEST_PEOPLE, ids=lambda p: p.outcome + p.nik[-2:])
async def test_each_test_person_gets_the_expected_outcome(
    local: LocalPopulationVerifier, person: TestPerson
) -> None:
    result = await local.verify(person.request())
    assert result == result_for(person.outcome)


async def test_a_person_missing_from_the_table_is_unknown(
    sessions: sessionmaker, local: LocalPopulationVerifier
) -> None:
    table = PopulationPerson.__table__
    with sessions.begin() as session:
        session.execute(delete(table).where(table.c.nik == BUDI.nik))
    assert (await local.verify(BUDI.request())).outcome == "unknown_nik"
    bad = replace(BUDI, nik="12345")
    assert (await local.verify(bad.request())).outcome == "unknown_nik"


@pytest.mark.parametrize(
    "change",
    [
        {"birth_date": date(1990, 8, 16)},
        {"kk_number": "3174010101150099"},
        {"full_name": "BUDI SANTOSA"},
    ],
)
async def test_any_differing_field_is_a_mismatch(
    local: LocalPopulationVerifier, change: dict[str, object]
) -> None:
    result = await local.verify(replace(BUDI, **change).request())  # type: ignore[arg-type]
    assert result.outcome == "data_mismatch"


async def test_case_spacing_and_separators_do_not_matter(
    local: LocalPopulationVerifier,
) -> None:
    typed = replace(
        BUDI,
        nik="3174 0115 0890 0001",
        kk_number="3174-0101-0115-0001",
        full_name="  budi   Santoso ",
    )
    assert (await local.verify(typed.request())).outcome == "verified"


async def test_the_table_decides_not_the_code(
    sessions: sessionmaker, local: LocalPopulationVerifier
) -> None:
    table = PopulationPerson.__table__
    with sessions.begin() as session:
        session.execute(
            update(table).where(table.c.nik == BUDI.nik).values(civil_servant=True)
        )
    assert (await local.verify(BUDI.request())).outcome == "civil_servant"


# --- KK cap ----------------------------------------------------------------------


async def test_family_registered_elsewhere_fills_the_kk(
    sessions: sessionmaker, local: LocalPopulationVerifier
) -> None:
    assert (await local.verify(KK_FULL.request())).outcome == "kk_full"
    roomier = LocalPopulationVerifier(sessions, kk_cap=KK_CAP + 1)
    assert (await roomier.verify(KK_FULL.request())).outcome == "verified"
    uncapped = LocalPopulationVerifier(sessions, kk_cap=None)  # policy 2020
    assert (await uncapped.verify(KK_FULL.request())).outcome == "verified"


async def test_other_applicants_here_count_against_the_kk(
    sessions: sessionmaker, local: LocalPopulationVerifier
) -> None:
    with sessions() as session:
        register_on_kk(session, BUDI, range(1))
    assert (await local.verify(BUDI.request())).outcome == "verified"
    with sessions() as session:
        register_on_kk(session, BUDI, range(1, 2))
    assert (await local.verify(BUDI.request())).outcome == "kk_full"


async def test_the_applicant_does_not_count_against_itself(
    sessions: sessionmaker, local: LocalPopulationVerifier
) -> None:
    # Registration reserved BUDI's own KK slot before the check: 2 counted, one
    # of them BUDI, so one other NIK: still room under a cap of 2.
    with sessions() as session:
        register_self(session, BUDI)
        register_on_kk(session, BUDI, range(1))
    assert (await local.verify(BUDI.request())).outcome == "verified"
    with sessions() as session:
        register_on_kk(session, BUDI, range(1, 2))
    assert (await local.verify(BUDI.request())).outcome == "kk_full"


async def test_a_registered_kk_full_person_stays_full(
    sessions: sessionmaker, local: LocalPopulationVerifier
) -> None:
    with sessions() as session:
        register_self(session, KK_FULL)
    assert (await local.verify(KK_FULL.request())).outcome == "kk_full"


def test_bad_settings_are_refused(sessions: sessionmaker) -> None:
    with pytest.raises(ValueError):
        LocalPopulationVerifier(sessions, kk_cap=0)
    with pytest.raises(ValueError):
        LocalPopulationVerifier(sessions, kk_cap=2, slow_delay=-1)


# --- the slow person -------------------------------------------------------------


async def test_the_slow_person_waits_the_rows_delay(
    local: LocalPopulationVerifier, sleeps: SleepRecorder
) -> None:
    for person in TEST_PEOPLE:
        await local.verify(person.request())
    assert sleeps.delays == [SLOW_CHECK_SECONDS]


@pytest.mark.parametrize("override, expected", [(0.05, [0.05]), (0.0, [])])
async def test_slow_delay_overrides_the_row(
    sessions: sessionmaker, override: float, expected: list[float]
) -> None:
    sleeps = SleepRecorder()
    local = LocalPopulationVerifier(
        sessions, kk_cap=KK_CAP, slow_delay=override, sleep=sleeps
    )
    assert (await local.verify(SLOW.request())).outcome == "verified"
    assert (await local.verify(BUDI.request())).outcome == "verified"
    assert sleeps.delays == expected


async def test_the_slow_check_stays_pending_until_the_delay_ends(
    sessions: sessionmaker,
) -> None:
    held = HeldSleep()
    local = LocalPopulationVerifier(sessions, kk_cap=KK_CAP, sleep=held)
    check = asyncio.create_task(local.verify(SLOW.request()))
    await asyncio.wait_for(held.started.wait(), timeout=10)
    assert not check.done()
    held.release.set()
    assert (await asyncio.wait_for(check, timeout=10)).outcome == "verified"
    assert held.delays == [SLOW_CHECK_SECONDS]


async def test_the_real_sleep_is_awaited(sessions: sessionmaker) -> None:
    local = LocalPopulationVerifier(sessions, kk_cap=KK_CAP, slow_delay=0.01)
    assert (await local.verify(SLOW.request())).outcome == "verified"


# --- failures and privacy --------------------------------------------------------


async def test_an_unreachable_database_is_unavailable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/missing/population.db", future=True)
    try:
        local = LocalPopulationVerifier(make_sessionmaker(engine), kk_cap=KK_CAP)
        result = await local.verify(BUDI.request())
    finally:
        engine.dispose()
    assert result.outcome == "unavailable" and result.retryable


def test_reasons_carry_no_personal_data() -> None:
    for outcome in OUTCOMES:
        reason = result_for(outcome).reason
        assert reason and not any(ch.isdigit() for ch in reason.replace("1500537", ""))
        for person in TEST_PEOPLE:
            assert person.full_name not in reason
    assert result_for("unavailable").retryable
    assert result_for("unavailable", retryable=False).reason != REASONS["unavailable"]
    with pytest.raises(ValueError):
        NikCheckResult("maybe", "?")


async def test_nik_never_logged_in_clear(
    sessions: sessionmaker,
    local: LocalPopulationVerifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with sessions.begin() as session:
        seed_population(session)
    for person in TEST_PEOPLE:
        await local.verify(person.request())
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "3174********0001" in text
    for person in TEST_PEOPLE:
        assert person.nik not in text
        assert person.kk_number not in text
        assert person.full_name not in text
