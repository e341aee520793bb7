"""Versioned Kartu Prakerja programme policy loaded from ``programme.yml``.

Nothing is read at import time: :func:`load_policy` and :func:`policy_for_date`
parse the data file on first use and cache it per path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

from bot.policy.yaml_file import read_yaml

DEFAULT_PATH = Path(__file__).with_name("programme.yml")
ENV_VAR = "PRAKERJA_POLICY"
WIB = timezone(timedelta(hours=7), "WIB")

SocialAid = Literal["deprioritised", "excluded", "allowed"]
SOCIAL_AID_VALUES: tuple[SocialAid, ...] = ("deprioritised", "excluded", "allowed")

DAYS_ID = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
_MONTHS_ID = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)


@dataclass(frozen=True)
class Eligibility:
    """Who may join under one scheme."""

    min_age: int
    max_age: int | None
    max_age_from_wave: int | None  # the cap applies from this wave on
    max_age_note: str | None
    kk_cap: int | None
    kk_cap_note: str | None
    social_aid: SocialAid
    social_aid_programmes: tuple[str, ...]
    excluded_occupations: tuple[str, ...]
    excluded_brief: str
    target_groups: tuple[str, ...]
    priority_note: str | None


@dataclass(frozen=True)
class Benefits:
    """Money a participant receives, in rupiah."""

    training_balance: int
    incentive_amount: int
    incentive_payments: int
    survey_incentive: int
    survey_count: int
    total: int

    @property
    def incentive_total(self) -> int:
        """All job-search incentive payments together."""
        return self.incentive_amount * self.incentive_payments

    @property
    def survey_total(self) -> int:
        """All survey incentives together."""
        return self.survey_incentive * self.survey_count

    @property
    def incentive_monthly(self) -> bool:
        """True when the incentive is paid in several monthly instalments."""
        return self.incentive_payments > 1


@dataclass(frozen=True)
class Training:
    """Training purchase rules."""

    first_purchase_days: int
    review_on_dashboard: bool  # rating and review given on the Prakerja dashboard


@dataclass(frozen=True)
class IncentivePayout:
    """Where the incentive can be paid to."""

    banks: tuple[str, ...]
    ewallets: tuple[str, ...]
    payout_workdays_min: int | None
    payout_workdays_max: int | None
    partner_cs: tuple[tuple[str, str], ...]  # (bank or e-wallet, CS number)


@dataclass(frozen=True)
class CallCenter:
    """Human support channels and opening hours (``weekdays``: Monday is 0).

    ``phone`` and the hours are None where the sources give none (then only
    the channels are told).
    """

    phone: str | None
    toll_free: bool
    channels: tuple[str, ...]
    weekdays: tuple[int, ...]
    opens: str | None
    closes: str | None
    timezone: str

    @property
    def has_hours(self) -> bool:
        """True when the sources give the opening hours."""
        return bool(self.weekdays) and self.opens is not None and bool(self.closes)

    @property
    def daily(self) -> bool:
        """True when open every day of the week."""
        return set(self.weekdays) == set(range(7))

    @staticmethod
    def at(hhmm: str) -> time:
        """``"08.00"`` as a time."""
        hour, minute = hhmm.split(".")
        return time(int(hour), int(minute))

    def is_open(self, now: datetime) -> bool:
        """Whether the call center is open at ``now`` (naive means WIB); always
        False without known hours."""
        if not self.has_hours or self.opens is None or self.closes is None:
            return False
        local = now.astimezone(WIB) if now.tzinfo else now
        return local.weekday() in self.weekdays and self.at(
            self.opens
        ) <= local.time() < self.at(self.closes)


@dataclass(frozen=True)
class Contacts:
    """Official site, e-mail domain and helplines."""

    site: str
    site_url: str
    faq_url: str
    email_domain: str
    info_email: str
    survey_email: str
    participation_email: str | None
    halo_dukcapil: str
    call_center: CallCenter


@dataclass(frozen=True)
class Account:
    """How account data is changed: ``change_phone`` is "profile" (self-service)
    or "call_center"."""

    change_phone: str


@dataclass(frozen=True)
class Registration:
    """Data formats asked for during registration."""

    nik_digits: int
    kk_digits: int
    card_digits: int
    email_chars: str
    face_check: bool  # face (liveness) verification is part of the flow


@dataclass(frozen=True)
class Otp:
    """OTP resend limit (None where the sources give none)."""

    max_resends: int | None
    wait_hours: int | None


@dataclass(frozen=True)
class Photo:
    """KTP photo and selfie upload rules."""

    formats: tuple[str, ...]
    max_mb: int


@dataclass(frozen=True)
class OnlineTest:
    """The online test; ``None`` where the sources give no number."""

    name: str
    questions: int | None
    minutes: int | None
    result_minutes: int | None


@dataclass(frozen=True)
class Selection:
    """Selection timing after a wave closes."""

    result_days_min: int
    result_days_max: int
    failures_for_statement: int


@dataclass(frozen=True)
class Wave:
    """One registration wave (gelombang)."""

    number: int
    quota: int
    opens: datetime
    closes: datetime


@dataclass(frozen=True)
class Policy:
    """One version of the programme rules."""

    version: str
    label: str
    valid_from: date
    notes: tuple[str, ...]
    eligibility: Eligibility
    benefits: Benefits
    training: Training
    incentive: IncentivePayout
    contacts: Contacts
    account: Account
    registration: Registration
    otp: Otp
    photo: Photo
    test: OnlineTest
    selection: Selection
    waves: tuple[Wave, ...]
    sources: tuple[tuple[str, str], ...]  # (dotted field path, source)

    def wave_at(self, moment: datetime) -> Wave | None:
        """The wave open at ``moment`` (naive means WIB), if any."""
        aware = moment if moment.tzinfo else moment.replace(tzinfo=WIB)
        for wave in self.waves:
            if wave.opens <= aware < wave.closes:
                return wave
        return None


def format_rupiah(amount: int) -> str:
    """Format whole rupiah Indonesian style: ``3550000`` -> ``Rp3.550.000``."""
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp{format_number(abs(amount))}"


def format_number(value: int) -> str:
    """Group thousands with dots, Indonesian style: ``164000`` -> ``164.000``."""
    return f"{value:,}".replace(",", ".")


def format_date(day: date) -> str:
    """Format a date in Indonesian: ``date(2020, 4, 11)`` -> ``11 April 2020``."""
    return f"{day.day} {_MONTHS_ID[day.month - 1]} {day.year}"


def format_datetime(moment: datetime) -> str:
    """Format a moment in WIB: ``11 April 2020 pukul 19.00 WIB``."""
    local = moment.astimezone(WIB) if moment.tzinfo else moment
    return f"{format_date(local.date())} pukul {local:%H.%M} WIB"


def known_versions(path: Path | None = None) -> tuple[str, ...]:
    """Names of the versions in the data file, oldest first."""
    data = _read_file(path or DEFAULT_PATH)
    versions = cast(dict[str, Any], data["versions"])
    return tuple(sorted(versions, key=lambda v: _valid_from(versions[v])))


def load_policy(version: str | None = None, path: Path | None = None) -> Policy:
    """Load one policy version.

    ``version`` None means the ``PRAKERJA_POLICY`` environment variable if set,
    else the file's ``default``. Raises ``ValueError`` for an unknown version.
    """
    file_path = path or DEFAULT_PATH
    data = _read_file(file_path)
    name = version or os.environ.get(ENV_VAR) or str(data["default"])
    if name not in data["versions"]:
        known = ", ".join(known_versions(file_path))
        raise ValueError(f"Unknown policy version {name!r}; known: {known}")
    return _build(file_path, name)


def policy_for_date(day: date, path: Path | None = None) -> Policy:
    """The policy version in force on ``day`` (latest ``valid_from`` <= day)."""
    file_path = path or DEFAULT_PATH
    data = _read_file(file_path)
    chosen: str | None = None
    for name in known_versions(file_path):
        if _valid_from(data["versions"][name]) <= day:
            chosen = name
    if chosen is None:
        first = known_versions(file_path)[0]
        raise ValueError(
            f"No policy in force on {day.isoformat()}; the first version "
            f"{first!r} starts {_valid_from(data['versions'][first]).isoformat()}"
        )
    return _build(file_path, chosen)


@lru_cache(maxsize=8)
def _read_file(path: Path) -> dict[str, Any]:
    """Parse the YAML data file once per path."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("versions"), dict):
        raise ValueError(f"{path}: expected a mapping with 'versions'")
    if str(data.get("default")) not in data["versions"]:
        raise ValueError(f"{path}: 'default' must name one of the versions")
    return data


def _valid_from(raw: dict[str, Any]) -> date:
    value = raw.get("valid_from")
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings; anything else in ``override`` replaces ``base``."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve(
    versions: dict[str, Any], name: str, seen: tuple[str, ...]
) -> dict[str, Any]:
    if name in seen:
        raise ValueError(f"Policy versions extend each other in a loop: {seen}")
    if name not in versions:
        raise ValueError(f"Policy version {seen[-1]!r} extends unknown {name!r}")
    raw = dict(versions[name])
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    return _merge(_resolve(versions, str(parent), (*seen, name)), raw)


@lru_cache(maxsize=32)
def _build(path: Path, name: str) -> Policy:
    raw = _resolve(_read_file(path)["versions"], name, ())
    try:
        policy = _policy_from_raw(name, raw)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: version {name!r} is incomplete: {exc}") from exc
    _check(policy)
    return policy


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _strs(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values or ())


def _moment(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=WIB)


def _policy_from_raw(name: str, raw: dict[str, Any]) -> Policy:
    elig, ben, con = raw["eligibility"], raw["benefits"], raw["contacts"]
    cc, test, sel = con["call_center"], raw["test"], raw["selection"]
    social_aid = str(elig["social_aid"])
    if social_aid not in SOCIAL_AID_VALUES:
        raise ValueError(
            f"version {name!r}: social_aid must be one of {SOCIAL_AID_VALUES}"
        )
    return Policy(
        version=name,
        label=str(raw["label"]),
        valid_from=_valid_from(raw),
        notes=_strs(raw.get("notes")),
        eligibility=Eligibility(
            min_age=int(elig["min_age"]),
            max_age=_opt_int(elig.get("max_age")),
            max_age_from_wave=_opt_int(elig.get("max_age_from_wave")),
            max_age_note=_opt_str(elig.get("max_age_note")),
            kk_cap=_opt_int(elig.get("kk_cap")),
            kk_cap_note=_opt_str(elig.get("kk_cap_note")),
            social_aid=social_aid,
            social_aid_programmes=_strs(elig["social_aid_programmes"]),
            excluded_occupations=_strs(elig["excluded_occupations"]),
            excluded_brief=str(elig["excluded_brief"]),
            target_groups=_strs(elig["target_groups"]),
            priority_note=_opt_str(elig.get("priority_note")),
        ),
        benefits=Benefits(
            training_balance=int(ben["training_balance"]),
            incentive_amount=int(ben["incentive_amount"]),
            incentive_payments=int(ben["incentive_payments"]),
            survey_incentive=int(ben["survey_incentive"]),
            survey_count=int(ben["survey_count"]),
            total=int(ben["total"]),
        ),
        training=Training(
            first_purchase_days=int(raw["training"]["first_purchase_days"]),
            review_on_dashboard=bool(raw["training"]["review_on_dashboard"]),
        ),
        incentive=IncentivePayout(
            banks=_strs(raw["incentive"]["banks"]),
            ewallets=_strs(raw["incentive"]["ewallets"]),
            payout_workdays_min=_opt_int(raw["incentive"].get("payout_workdays_min")),
            payout_workdays_max=_opt_int(raw["incentive"].get("payout_workdays_max")),
            partner_cs=tuple(
                (str(k), str(v))
                for k, v in (raw["incentive"].get("partner_cs") or {}).items()
            ),
        ),
        contacts=Contacts(
            site=str(con["site"]),
            site_url=str(con["site_url"]),
            faq_url=str(con["faq_url"]),
            email_domain=str(con["email_domain"]),
            info_email=str(con["info_email"]),
            survey_email=str(con["survey_email"]),
            participation_email=_opt_str(con.get("participation_email")),
            halo_dukcapil=str(con["halo_dukcapil"]),
            call_center=CallCenter(
                phone=_opt_str(cc.get("phone")),
                toll_free=bool(cc.get("toll_free")),
                channels=_strs(cc["channels"]),
                weekdays=tuple(int(d) for d in cc.get("weekdays") or ()),
                opens=_opt_str(cc.get("opens")),
                closes=_opt_str(cc.get("closes")),
                timezone=str(cc["timezone"]),
            ),
        ),
        account=Account(change_phone=str(raw["account"]["change_phone"])),
        registration=Registration(
            nik_digits=int(raw["registration"]["nik_digits"]),
            kk_digits=int(raw["registration"]["kk_digits"]),
            card_digits=int(raw["registration"]["card_digits"]),
            email_chars=str(raw["registration"]["email_chars"]),
            face_check=bool(raw["registration"]["face_check"]),
        ),
        otp=Otp(
            max_resends=_opt_int(raw["otp"].get("max_resends")),
            wait_hours=_opt_int(raw["otp"].get("wait_hours")),
        ),
        photo=Photo(
            formats=_strs(raw["photo"]["formats"]), max_mb=int(raw["photo"]["max_mb"])
        ),
        test=OnlineTest(
            name=str(test["name"]),
            questions=_opt_int(test.get("questions")),
            minutes=_opt_int(test.get("minutes")),
            result_minutes=_opt_int(test.get("result_minutes")),
        ),
        selection=Selection(
            result_days_min=int(sel["result_days_min"]),
            result_days_max=int(sel["result_days_max"]),
            failures_for_statement=int(sel["failures_for_statement"]),
        ),
        waves=tuple(
            Wave(
                number=int(w["number"]),
                quota=int(w["quota"]),
                opens=_moment(w["opens"]),
                closes=_moment(w["closes"]),
            )
            for w in raw.get("waves") or ()
        ),
        sources=tuple((str(k), str(v)) for k, v in (raw.get("sources") or {}).items()),
    )


def _check(policy: Policy) -> None:
    """Reject internally inconsistent data (e.g. a total that does not add up)."""
    ben = policy.benefits
    parts = ben.training_balance + ben.incentive_total + ben.survey_total
    if parts != ben.total:
        raise ValueError(
            f"version {policy.version!r}: benefits total {ben.total} != sum of "
            f"parts {parts}"
        )
    elig = policy.eligibility
    if elig.max_age is not None and elig.max_age < elig.min_age:
        raise ValueError(f"version {policy.version!r}: max_age below min_age")
    if policy.account.change_phone not in ("profile", "call_center"):
        raise ValueError(f"version {policy.version!r}: change_phone unknown")
    if not all(0 <= d <= 6 for d in policy.contacts.call_center.weekdays):
        raise ValueError(f"version {policy.version!r}: weekdays must be 0-6")
    for wave in policy.waves:
        if wave.closes <= wave.opens:
            raise ValueError(
                f"version {policy.version!r}: wave {wave.number} closes early"
            )
