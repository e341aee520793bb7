"""Agent hours in WIB: open or closed, the next opening across days and weeks,
and AGENT_HOURS / AGENT_DAYS read from the environment."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from bot.handoff import WIB, AgentHours
from bot.policy.programme import load_policy
from bot.settings import (
    SettingsError,
    load_settings,
    parse_agent_days,
    parse_agent_hours,
)

DEFAULT = AgentHours()
WEEKDAYS = AgentHours(opens=time(8), closes=time(17), weekdays=frozenset(range(1, 6)))


def wib(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in WIB, 30 November 2026 (a Monday) + `day` days."""
    return datetime(2026, 11, 30, hour, minute, tzinfo=WIB) + timedelta(days=day)


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (wib(0, 8), True),  # opening minute
        (wib(0, 19, 59), True),
        (wib(0, 20), False),  # closing is exclusive
        (wib(0, 7, 59), False),
        (wib(6, 12), True),  # Sunday: every day by default
    ],
)
def test_default_hours_are_eight_to_eight_every_day(
    moment: datetime, open_: bool
) -> None:
    assert DEFAULT.is_open(moment) is open_


def test_naive_and_other_zones_are_converted_to_wib() -> None:
    assert DEFAULT.is_open(datetime(2026, 11, 30, 1, 0))  # naive UTC = 08:00 WIB
    assert not DEFAULT.is_open(datetime(2026, 11, 30, 0, 59))  # 07:59 WIB
    assert DEFAULT.is_open(datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc))
    jakarta_evening = datetime(2026, 11, 30, 13, 30, tzinfo=timezone.utc)  # 20:30 WIB
    assert not DEFAULT.is_open(jakarta_evening)


def test_the_next_opening_is_today_tomorrow_or_after_the_weekend() -> None:
    assert DEFAULT.next_opening(wib(0, 6)) == wib(0, 8)
    assert DEFAULT.next_opening(wib(0, 21)) == wib(1, 8)
    assert DEFAULT.next_opening(wib(0, 10)) == wib(0, 10)  # open now
    friday_evening = wib(4, 18)
    assert WEEKDAYS.next_opening(friday_evening) == wib(7, 8)  # next Monday
    assert WEEKDAYS.next_opening(wib(5, 9)) == wib(7, 8)  # Saturday morning
    assert not WEEKDAYS.is_open(wib(5, 9))
    assert WEEKDAYS.next_opening(wib(5, 9)).tzinfo == WIB


def test_the_next_opening_of_a_naive_utc_moment_is_in_wib() -> None:
    opening = DEFAULT.next_opening(datetime(2026, 11, 30, 14, 0))  # 21:00 WIB
    assert opening == wib(1, 8)
    assert opening.utcoffset() == timedelta(hours=7)


def test_one_day_a_week() -> None:
    sundays = AgentHours(opens=time(9), closes=time(12), weekdays=frozenset({7}))
    assert sundays.next_opening(wib(6, 12)) == wib(13, 9)  # Sunday noon: next week


def test_impossible_hours_are_refused() -> None:
    with pytest.raises(ValueError):
        AgentHours(opens=time(20), closes=time(8))
    with pytest.raises(ValueError):
        AgentHours(weekdays=frozenset())
    with pytest.raises(ValueError):
        AgentHours(weekdays=frozenset({0, 1}))


# --- settings ---------------------------------------------------------------------


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PRAKERJA_ENV": "test",
        "PRAKERJA_VAR_DIR": str(tmp_path),
        "PSEUDONYM_KEY": "k" * 32,
        **extra,
    }


@pytest.mark.parametrize(
    ("version", "hours", "days"),
    [
        ("2020", (time(8), time(19)), frozenset(range(1, 6))),  # Senin-Jumat
        ("2020-10", (time(8), time(20)), frozenset(range(1, 8))),
        ("2021", (time(8), time(20)), frozenset(range(1, 8))),
        ("2023", (time(8), time(20)), frozenset(range(1, 8))),  # no hours known
    ],
)
def test_agent_hours_default_to_the_policys_call_center(
    tmp_path: Path, version: str, hours: tuple[time, time], days: frozenset[int]
) -> None:
    settings = load_settings(_env(tmp_path, PRAKERJA_POLICY=version))
    assert settings.agent_hours == hours
    assert settings.agent_days == days
    call_center = load_policy(version).contacts.call_center
    if call_center.has_hours:  # the agents' hours are the call center's hours
        agents = AgentHours.from_settings(settings)
        for hour in range(24):
            moment = datetime(2021, 5, 3 + hour % 7, hour, 30, tzinfo=WIB)
            assert agents.is_open(moment) == call_center.is_open(moment)


def test_without_a_policy_hours_the_default_is_eight_to_eight(tmp_path: Path) -> None:
    settings = load_settings(_env(tmp_path, PRAKERJA_POLICY="2023"))
    assert AgentHours.from_settings(settings) == DEFAULT


def test_settings_read_agent_hours_and_days(tmp_path: Path) -> None:
    settings = load_settings(
        _env(tmp_path, AGENT_HOURS=" 07.30 - 16:00 ", AGENT_DAYS="1-5, 7")
    )
    hours = AgentHours.from_settings(settings)
    assert (hours.opens, hours.closes) == (time(7, 30), time(16))
    assert hours.weekdays == frozenset({1, 2, 3, 4, 5, 7})


@pytest.mark.parametrize(
    "value", ["8-20", "08:00", "20:00-08:00", "08:00-08:00", "25:00-26:00", "x"]
)
def test_bad_agent_hours_stop_the_start(value: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="AGENT_HOURS"):
        load_settings(_env(tmp_path, AGENT_HOURS=value))


@pytest.mark.parametrize("value", ["0-5", "1-8", "5-1", "senin", "1,,2", "1-"])
def test_bad_agent_days_stop_the_start(value: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="AGENT_DAYS"):
        load_settings(_env(tmp_path, AGENT_DAYS=value))


def test_the_parsers_accept_single_days_and_ranges() -> None:
    assert parse_agent_days("3") == frozenset({3})
    assert parse_agent_days("1,3-4") == frozenset({1, 3, 4})
    assert parse_agent_hours("00:00-23:59") == (time(0), time(23, 59))


def test_24_00_means_until_the_end_of_the_day() -> None:
    opens, closes = parse_agent_hours("00:00-24:00")
    hours = AgentHours(opens=opens, closes=closes)
    late = datetime(2026, 11, 25, 16, 59, 59, tzinfo=timezone.utc)  # 23.59.59 WIB

    assert (opens, closes) == (time(0), time.max)
    assert hours.is_open(late)
    with pytest.raises(SettingsError):
        parse_agent_hours("00:00-24:30")
