"""LocalPopulationVerifier: one synthetic person per outcome."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import date

import pytest

from bot.policy.validation import nik_birth_date_matches, validate_kk, validate_nik
from bot.verification.nik import OUTCOMES, REASONS, NikCheckResult, result_for
from bot.verification.population import (
    POPULATION,
    TEST_PEOPLE,
    LocalPopulationVerifier,
    TestPerson,
)

BUDI, SITI = TEST_PEOPLE[0], TEST_PEOPLE[1]
SLOW = next(p for p in TEST_PEOPLE if "lambat" in p.note)
KK_FULL = next(p for p in TEST_PEOPLE if p.outcome == "kk_full")


@pytest.fixture
def local() -> LocalPopulationVerifier:
    return LocalPopulationVerifier(slow_delay=0.01)


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


@pytest.mark.parametrize("person", TEST_PEOPLE, ids=lambda p: p.outcome)
async def test_each_test_person_gets_the_expected_outcome(
    local: LocalPopulationVerifier, person: TestPerson
) -> None:
    result = await local.verify(person.request())
    assert result == result_for(person.outcome)


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


async def test_kk_cap_counts_the_callers_registrations(
    local: LocalPopulationVerifier,
) -> None:
    seen: list[tuple[str, str]] = []

    def counter(kk: str, nik: str) -> int:
        seen.append((kk, nik))
        return 2

    capped = LocalPopulationVerifier(kk_registered_count=counter)
    assert (await capped.verify(BUDI.request())).outcome == "kk_full"
    assert seen == [(BUDI.kk_number, BUDI.nik)]

    async def one(kk: str, nik: str) -> int:
        return 1

    below = LocalPopulationVerifier(kk_registered_count=one)
    assert (await below.verify(BUDI.request())).outcome == "verified"


async def test_no_cap_under_policy_2020() -> None:
    uncapped = LocalPopulationVerifier(kk_cap=None)
    assert (await uncapped.verify(KK_FULL.request())).outcome == "verified"


async def test_slow_person_takes_the_configured_delay() -> None:
    slow = LocalPopulationVerifier(slow_delay=0.2)
    with pytest.raises(asyncio.TimeoutError):  # still pending
        await asyncio.wait_for(slow.verify(SLOW.request()), timeout=0.05)
    started = time.monotonic()
    result = await slow.verify(SLOW.request())
    assert time.monotonic() - started >= 0.2
    assert result.outcome == "verified"


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
    local: LocalPopulationVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for person in TEST_PEOPLE:
        await local.verify(person.request())
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "3174********0001" in text
    for person in TEST_PEOPLE:
        assert person.nik not in text
