"""Tests for the versioned policy data and its loader."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from bot.policy.programme import (
    DEFAULT_PATH,
    ENV_VAR,
    WIB,
    Policy,
    format_date,
    format_datetime,
    format_number,
    format_rupiah,
    known_versions,
    load_policy,
    policy_for_date,
)

VERSIONS = ("2020", "2020-10", "2021", "2023")


@pytest.fixture(autouse=True)
def _no_policy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_known_versions_oldest_first() -> None:
    assert known_versions() == VERSIONS


def test_default_is_2020() -> None:
    assert load_policy().version == "2020"


def test_env_var_selects_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "2023")
    assert load_policy().version == "2023"


def test_explicit_version_beats_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "2023")
    assert load_policy("2021").version == "2021"


@pytest.mark.parametrize("bad", ["1999", "2024", "latest"])
def test_unknown_version_names_known_ones(bad: str) -> None:
    with pytest.raises(ValueError) as err:
        load_policy(bad)
    for name in VERSIONS:
        assert name in str(err.value)


def test_unknown_env_version_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "nope")
    with pytest.raises(ValueError, match="2020"):
        load_policy()


def test_policy_is_frozen() -> None:
    policy = load_policy("2020")
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.version = "x"  # type: ignore[misc]


def test_no_file_read_at_import() -> None:
    code = (
        "import bot.policy.programme as p, bot.policy.texts as t, "
        "bot.policy.answers, bot.policy.eligibility, bot.policy.validation;"
        "print(p._read_file.cache_info().currsize, t.load_texts.cache_info().currsize)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["0", "0"]


@pytest.mark.parametrize(
    ("version", "training", "incentive", "payments", "survey", "surveys", "total"),
    [
        ("2020", 1_000_000, 600_000, 4, 50_000, 3, 3_550_000),
        ("2021", 1_000_000, 600_000, 4, 50_000, 3, 3_550_000),
        ("2023", 3_500_000, 600_000, 1, 50_000, 2, 4_200_000),
    ],
)
def test_benefits(
    version: str,
    training: int,
    incentive: int,
    payments: int,
    survey: int,
    surveys: int,
    total: int,
) -> None:
    ben = load_policy(version).benefits
    assert (ben.training_balance, ben.incentive_amount, ben.incentive_payments) == (
        training,
        incentive,
        payments,
    )
    assert (ben.survey_incentive, ben.survey_count, ben.total) == (
        survey,
        surveys,
        total,
    )
    assert ben.training_balance + ben.incentive_total + ben.survey_total == total


@pytest.mark.parametrize(
    ("version", "min_age", "max_age", "kk_cap", "social_aid", "days"),
    [
        ("2020", 18, None, None, "deprioritised", 30),
        ("2020-10", 18, None, None, "deprioritised", 30),
        ("2021", 18, 64, 2, "excluded", 30),
        ("2023", 18, 64, 2, "allowed", 15),
    ],
)
def test_rules_per_version(
    version: str,
    min_age: int,
    max_age: int | None,
    kk_cap: int | None,
    social_aid: str,
    days: int,
) -> None:
    policy = load_policy(version)
    elig = policy.eligibility
    assert (elig.min_age, elig.max_age, elig.kk_cap) == (min_age, max_age, kk_cap)
    assert elig.social_aid == social_aid
    assert policy.training.first_purchase_days == days


def test_2021_notes_wave_of_age_and_kk_rules() -> None:
    elig = load_policy("2021").eligibility
    assert elig.max_age_note is not None and "18" in elig.max_age_note
    assert elig.kk_cap_note is not None and "12" in elig.kk_cap_note


def test_excluded_occupations_cover_domain_groups() -> None:
    joined = " ".join(load_policy("2020").eligibility.excluded_occupations)
    for group in ("pejabat negara", "DPR", "ASN", "PNS", "TNI", "Polri", "desa"):
        assert group in joined
    assert "BUMN" in joined and "BUMD" in joined


@pytest.mark.parametrize("version", VERSIONS)
def test_common_facts(version: str) -> None:
    policy = load_policy(version)
    assert policy.contacts.site == "www.prakerja.go.id"
    assert policy.contacts.site_url == "https://www.prakerja.go.id"
    assert policy.contacts.email_domain == "prakerja.go.id"
    assert policy.contacts.halo_dukcapil == "1500537"
    assert policy.photo.formats == ("JPG", "PNG") and policy.photo.max_mb == 2
    sel = policy.selection
    assert (sel.result_days_min, sel.result_days_max) == (3, 7)
    assert policy.registration.nik_digits == 16


def test_otp_limit_only_from_2023() -> None:
    # The resend limit is from the official FAQ of November 2023 (facts.md 2.3).
    for version in ("2020", "2020-10", "2021"):
        assert load_policy(version).otp.max_resends is None
    otp = load_policy("2023").otp
    assert (otp.max_resends, otp.wait_hours) == (5, 2)


def test_call_center_per_version() -> None:
    assert load_policy("2020").contacts.call_center.phone == "021-25541246"
    for version in ("2020-10", "2021"):
        assert load_policy(version).contacts.call_center.phone == "0800-150-3001"
    cc_2023 = load_policy("2023").contacts.call_center
    assert cc_2023.phone is None and not cc_2023.has_hours
    assert not cc_2023.is_open(datetime(2023, 5, 2, 10, 0))


def test_test_format_known_until_2021_unknown_in_2023() -> None:
    test_2020 = load_policy("2020").test
    assert (test_2020.questions, test_2020.minutes, test_2020.result_minutes) == (
        18,
        25,
        5,
    )
    test_2023 = load_policy("2023").test
    assert test_2023.questions is None and test_2023.minutes == 40
    assert "TKD" in test_2023.name


def test_wave_one() -> None:
    policy = load_policy("2020")
    (wave,) = policy.waves
    assert (wave.number, wave.quota) == (1, 164_000)
    assert wave.opens == datetime(2020, 4, 11, 19, 0, tzinfo=WIB)
    assert wave.closes == datetime(2020, 4, 16, 16, 0, tzinfo=WIB)
    assert policy.wave_at(datetime(2020, 4, 11, 19, 0)) == wave
    assert policy.wave_at(datetime(2020, 4, 11, 18, 59)) is None
    assert policy.wave_at(datetime(2020, 4, 16, 16, 0)) is None


@pytest.mark.parametrize(
    ("version", "moment", "is_open"),
    [
        ("2020", datetime(2020, 4, 13, 8, 0), True),  # Monday
        ("2020", datetime(2020, 4, 13, 7, 59), False),
        ("2020", datetime(2020, 4, 13, 19, 0), False),
        ("2020", datetime(2020, 4, 17, 18, 59), True),  # Friday
        ("2020", datetime(2020, 4, 18, 10, 0), False),  # Saturday
        ("2021", datetime(2021, 5, 2, 19, 30), True),  # Sunday
        ("2021", datetime(2021, 5, 2, 20, 0), False),
        ("2021", datetime(2021, 5, 2, 1, 0, tzinfo=WIB), False),
    ],
)
def test_call_center_hours(version: str, moment: datetime, is_open: bool) -> None:
    assert load_policy(version).contacts.call_center.is_open(moment) is is_open


@pytest.mark.parametrize(
    ("day", "version"),
    [
        (date(2020, 4, 11), "2020"),
        (date(2020, 9, 30), "2020"),
        (date(2020, 10, 4), "2020"),
        (date(2020, 10, 5), "2020-10"),
        (date(2021, 1, 1), "2021"),
        (date(2022, 12, 31), "2021"),
        (date(2023, 1, 1), "2023"),
        (date(2030, 1, 1), "2023"),
    ],
)
def test_policy_for_date(day: date, version: str) -> None:
    assert policy_for_date(day).version == version


def test_policy_for_date_before_programme() -> None:
    with pytest.raises(ValueError, match="2020-04-11"):
        policy_for_date(date(2020, 4, 10))


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0, "Rp0"),
        (500, "Rp500"),
        (50_000, "Rp50.000"),
        (600_000, "Rp600.000"),
        (3_550_000, "Rp3.550.000"),
        (4_200_000, "Rp4.200.000"),
        (-1_000, "-Rp1.000"),
    ],
)
def test_format_rupiah(amount: int, text: str) -> None:
    assert format_rupiah(amount) == text


def test_format_helpers() -> None:
    assert format_number(164_000) == "164.000"
    assert format_date(date(2020, 4, 11)) == "11 April 2020"
    assert format_date(date(2018, 3, 1)) == "1 Maret 2018"
    assert (
        format_datetime(datetime(2020, 4, 11, 19, 0, tzinfo=WIB))
        == "11 April 2020 pukul 19.00 WIB"
    )


# --- custom data files ------------------------------------------------------


def _write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "programme.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _real_data() -> dict[str, object]:
    data = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_custom_path_and_inheritance(tmp_path: Path) -> None:
    data = _real_data()
    versions = data["versions"]
    assert isinstance(versions, dict)
    versions["2030"] = {
        "extends": "2023",
        "label": "skema uji",
        "valid_from": date(2030, 1, 1),
        "training": {"first_purchase_days": 7},
    }
    path = _write(tmp_path, data)
    policy = load_policy("2030", path=path)
    assert isinstance(policy, Policy)
    assert policy.training.first_purchase_days == 7
    assert policy.benefits.total == 4_200_000  # inherited from 2023
    assert policy_for_date(date(2031, 1, 1), path=path).version == "2030"


def test_total_must_add_up(tmp_path: Path) -> None:
    data = _real_data()
    versions = data["versions"]
    assert isinstance(versions, dict)
    versions["2020"]["benefits"]["total"] = 1
    with pytest.raises(ValueError, match="total"):
        load_policy("2020", path=_write(tmp_path, data))


def test_extends_loop_rejected(tmp_path: Path) -> None:
    data = _real_data()
    versions = data["versions"]
    assert isinstance(versions, dict)
    versions["2020"]["extends"] = "2023"
    with pytest.raises(ValueError, match="loop"):
        load_policy("2021", path=_write(tmp_path, data))


def test_default_must_exist(tmp_path: Path) -> None:
    data = _real_data()
    data["default"] = "1999"
    with pytest.raises(ValueError, match="default"):
        load_policy(path=_write(tmp_path, data))


def test_bad_social_aid_value(tmp_path: Path) -> None:
    data = _real_data()
    versions = data["versions"]
    assert isinstance(versions, dict)
    versions["2023"]["eligibility"]["social_aid"] = "maybe"
    with pytest.raises(ValueError, match="social_aid"):
        load_policy("2023", path=_write(tmp_path, data))
