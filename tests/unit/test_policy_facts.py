"""Every fact the bot states comes from programme.yml, for the version it answers.

Walks every answer of every policy version (each FAQ answer and sub-topic, the
call center, the eligibility questions, reasons and next steps, the media
replies and the first-training deadline) and checks each fact that is data:
amounts, ages, days, hours, counts, phone numbers, e-mail and web addresses,
hours of service and dates. A number or address that the version's data does
not hold fails, and so does a rule that belongs to another year. Also checks
that programme.yml names a source for every data field of every version.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest

from bot.policy.answers import (
    call_center_text,
    contact_answer,
    media_text,
    render_answer,
)
from bot.policy.eligibility import QUESTIONS, question_text
from bot.policy.programme import (  # the raw data, sources
    DEFAULT_PATH,
    WIB,
    Policy,
    _read_file,
    _resolve,
    format_date,
    format_rupiah,
    known_versions,
    load_policy,
)
from bot.policy.texts import load_texts, render_text, section
from bot.registration.status import first_training_deadline

VERSIONS = known_versions()

# --- every answer of a version ---------------------------------------------------


def _samples(spec: dict[str, Any]) -> list[str]:
    return [str(k) for k in spec["keywords"] if not str(k).startswith("re:")]


# What a person told us, filled into some texts: not facts of the policy.
INPUTS = {
    "age": 97,
    "kk_count": 96,
    "question": "?",
    "eligible_date": format_date(date(2099, 1, 1)),
}
EXAMPLE = re.compile(r"(?:[Cc]ontoh|misalnya):? [^)?]*")


def reachable(code: str, policy: Policy) -> bool:
    """Whether an eligibility reason or next step can be said under ``policy``."""
    elig = policy.eligibility
    aid = elig.social_aid
    return {
        "too_old": elig.max_age is not None,
        "too_old_from_wave": elig.max_age_from_wave is not None,
        "eligible_before_wave": elig.max_age_from_wave is not None,
        "kk_cap": elig.kk_cap is not None,
        "social_aid_excluded": aid == "excluded",
        "social_aid_deprioritised": aid == "deprioritised",
        "eligible_warning": aid == "deprioritised",
    }.get(code, True)


def answers_of(policy: Policy) -> Iterator[tuple[str, str]]:
    """(where, text) for everything the bot says from the policy."""
    for intent, entry in load_texts()["intents"].items():
        yield f"{intent}.general", render_answer(intent, policy)
        for topic, spec in (entry.get("topics") or {}).items():
            for sample in _samples(spec)[:3]:
                yield f"{intent}.{topic}", render_answer(intent, policy, sample)
    yield "call_center", call_center_text(policy)
    yield "call_center.closed", call_center_text(policy, datetime(2021, 5, 2, 23, 0))
    yield "contact", contact_answer(policy)
    for question in QUESTIONS:
        yield f"eligibility.{question}", question_text(question, policy)
    texts = section("eligibility")
    for group in ("reasons", "next_steps"):
        for name, template in texts[group].items():
            if not reachable(name, policy):
                continue
            yield f"eligibility.{group}.{name}", render_text(template, policy, INPUTS)
    for kind in ("photo", "contact"):
        yield f"media.{kind}", media_text(kind, policy)


def deadline_of(policy: Policy, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PRAKERJA_POLICY", policy.version)
    return first_training_deadline(None)


# --- what the version's data allows ------------------------------------------------


def _opt(*values: int | None) -> set[int]:
    return {v for v in values if v is not None}


def allowed(policy: Policy) -> dict[str, set[Any]]:
    """The values each kind of fact may take under ``policy``."""
    elig, ben, con = policy.eligibility, policy.benefits, policy.contacts
    cc, test, sel, reg = (
        con.call_center,
        policy.test,
        policy.selection,
        policy.registration,
    )
    wave_numbers = {w.number for w in policy.waves}
    return {
        "rupiah": {
            format_rupiah(v)
            for v in (
                ben.training_balance,
                ben.incentive_amount,
                ben.incentive_total,
                ben.survey_incentive,
                ben.survey_total,
                ben.total,
            )
        },
        "phone": {n for n in (cc.phone, con.halo_dukcapil) if n}
        | {number for _, number in policy.incentive.partner_cs},
        "email": {
            e for e in (con.info_email, con.survey_email, con.participation_email) if e
        },
        "web": {con.site, con.site_url, con.faq_url, f"@{con.email_domain}"},
        "tahun": _opt(elig.min_age, elig.max_age),
        "hari kerja": _opt(
            policy.incentive.payout_workdays_min, policy.incentive.payout_workdays_max
        ),
        "hari": _opt(
            policy.training.first_purchase_days,
            sel.result_days_min,
            sel.result_days_max,
        ),
        "menit": _opt(test.minutes, test.result_minutes),
        "jam": _opt(policy.otp.wait_hours),
        "kali": _opt(policy.otp.max_resends, sel.failures_for_statement),
        "digit": {reg.nik_digits, reg.kk_digits, reg.card_digits},
        "MB": {policy.photo.max_mb},
        "soal": _opt(test.questions),
        "bulan": {ben.incentive_payments},
        "orang": _opt(elig.kk_cap) | {w.quota for w in policy.waves},
        "survei": {ben.survey_count},
        "gelombang": _opt(elig.max_age_from_wave) | wave_numbers,
        "hours": ({f"{cc.opens}-{cc.closes} {cc.timezone}"} if cc.has_hours else set()),
    }


RUPIAH = re.compile(r"Rp[\d.]+")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
WEB = re.compile(r"https?://[\w./-]+|www\.[\w./-]+|@[\w-]+\.[\w.]+")
HOURS = re.compile(r"\d{2}\.\d{2}-\d{2}\.\d{2} WIB")
PHONE = re.compile(r"\(?\b\d{3,4}\)?[ -]?\d{2,}(?:-\d+)*|\b\d{6,}\b")
DATE = re.compile(
    r"\b\d{1,2} (?:Januari|Februari|Maret|April|Mei|Juni|Juli|Agustus|September"
    r"|Oktober|November|Desember) \d{4}\b"
)
UNITS = ("hari kerja", "hari", "tahun", "menit", "jam", "kali", "digit", "MB",
         "soal", "bulan", "orang", "survei")  # fmt: skip
GROUPED = r"\d{1,3}(?:\.\d{3})+|\d+"
NUMBER = re.compile(
    rf"(?<![\w.])(?:ke-)?({GROUPED})(?:-({GROUPED}))?(?:\s+([A-Za-z]+(?: kerja)?))?"
)
GELOMBANG = re.compile(r"gelombang (\d+)", re.IGNORECASE)


def facts_in(text: str, policy: Policy) -> list[str]:
    """The facts in ``text`` that ``policy``'s data does not hold."""
    ok = allowed(policy)
    wrong: list[str] = []
    elig = policy.eligibility
    for own in (  # the version's own words that hold digits ("COVID-19")
        policy.label,
        policy.registration.email_chars,
        policy.test.name,
        elig.priority_note,
        elig.max_age_note,
        elig.kk_cap_note,
    ):
        if own:
            text = text.replace(own, " ")
    text = EXAMPLE.sub(" ", text)
    for value in INPUTS.values():
        text = re.sub(rf"(?<![\w.]){re.escape(str(value))}(?![\w])", " ", text)

    def take(pattern: re.Pattern[str], kind: str, body: str) -> str:
        for match in pattern.finditer(body):
            value = match.group(0).rstrip(".")
            if value not in ok[kind]:
                wrong.append(f"{kind}: {value}")
        return pattern.sub(" ", body)

    rest = take(RUPIAH, "rupiah", text)
    rest = take(EMAIL, "email", rest)
    rest = take(WEB, "web", rest)
    rest = take(HOURS, "hours", rest)
    for match in DATE.finditer(rest):  # only the waves' dates are data
        wave_days = {format_date(w.opens.astimezone(WIB).date()) for w in policy.waves}
        wave_days |= {
            format_date(w.closes.astimezone(WIB).date()) for w in policy.waves
        }
        if match.group(0) not in wave_days:
            wrong.append(f"date: {match.group(0)}")
    rest = DATE.sub(" ", rest)
    rest = re.sub(r"pukul \d{2}\.\d{2}", " ", rest)  # wave times, with their dates
    rest = take(PHONE, "phone", rest)
    for match in GELOMBANG.finditer(rest):
        if int(match.group(1)) not in ok["gelombang"]:
            wrong.append(f"gelombang {match.group(1)}")
    rest = GELOMBANG.sub(" ", rest)
    for match in NUMBER.finditer(rest):
        numbers = [int(n.replace(".", "")) for n in match.group(1, 2) if n]
        word = match.group(3) or ""
        unit = word if word in UNITS else None
        pool = ok[unit] if unit else set().union(*(ok[u] for u in UNITS))
        for number in numbers:
            if number not in pool:
                wrong.append(f"{number} {match.group(3) or ''}".strip())
    return wrong


# --- the tests ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_policy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRAKERJA_POLICY", raising=False)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_answer_states_only_the_versions_data(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = load_policy(version)
    texts = [*answers_of(policy), ("deadline", deadline_of(policy, monkeypatch))]
    problems = {
        where: wrong for where, text in texts if (wrong := facts_in(text, policy))
    }
    assert problems == {}


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("Total Rp3.550.000.", []),
        ("Total Rp9.999.000.", ["rupiah: Rp9.999.000"]),
        ("Hubungi call center 0800-150-3001.", ["phone: 0800-150-3001"]),
        ("Telepon 021-25541246, Senin-Jumat 08.00-19.00 WIB.", []),
        ("Setiap hari 08.00-20.00 WIB.", ["hours: 08.00-20.00 WIB"]),
        ("Email ke kepesertaan@prakerja.go.id.", ["email: kepesertaan@prakerja.go.id"]),
        ("Minta ulang sampai 5 kali lalu tunggu 2 jam.", ["5 kali", "2 jam"]),
        ("Usia 18-64 tahun.", ["64 tahun"]),
        ("Beli dalam 30 hari.", []),
        ("Beli dalam 15 hari.", ["15 hari"]),
        ("Cair dalam 7 hari kerja.", []),
        ("Sejak gelombang 18 ada batas.", ["gelombang 18"]),
        ("Situs www.prakerja.go.id dan @prakerja.go.id.", []),
        ("Situs www.prakerja-daftar.com.", ["web: www.prakerja-daftar.com"]),
        ("Dibuka 11 April 2020 pukul 19.00 WIB.", []),
        ("Dibuka 1 Mei 2020.", ["date: 1 Mei 2020"]),
    ],
)
def test_the_fact_check_catches_what_2020_does_not_hold(
    text: str, wrong: list[str]
) -> None:
    assert facts_in(text, load_policy("2020")) == wrong


def _answers(version: str) -> str:
    return "\n".join(text for _, text in answers_of(load_policy(version)))


@pytest.mark.parametrize("version", ["2020", "2020-10"])
def test_2020_answers_use_no_later_rules(version: str) -> None:
    said = _answers(version)
    # BSU and BPUM started after April 2020; the OTP limit is from 2023; the
    # rating on the dashboard from March 2021; the TKD test and the profile's
    # phone change from 2023 on; the age cap from wave 18.
    for later in ("BSU", "BPUM", "TKD", "Ubah Nomor Handphone", "kedipkan",
                  "64 tahun", "gelombang 18", "kepesertaan@"):  # fmt: skip
        assert later not in said, later
    assert not re.search(r"ulasan (?:di|lewat) dashboard", said)
    assert not re.search(r"rating dan ulasan diberikan di dashboard", said, re.I)


def test_2023_answers_use_2023_rules() -> None:
    said = _answers("2023")
    assert "TKD" in said and "40 menit" in said and "15 hari" in said
    assert "Ubah Nomor Handphone" in said and "5 kali" in said
    assert "30 hari" not in said and "Rp1.000.000" not in said
    assert "08.00" not in said  # no call-center hours are known after 2021


@pytest.mark.parametrize("version", VERSIONS)
def test_no_answer_contradicts_the_scam_warning(version: str) -> None:
    said = _answers(version).lower()
    assert "daftar langsung di chat ini" not in said
    assert "lulus tes" not in said  # the test is not pass/fail
    assert "didaftarkan sekali" not in said  # once-per-lifetime is about receiving


@pytest.mark.parametrize("version", VERSIONS)
def test_every_call_center_mention_names_how_to_reach_it(version: str) -> None:
    policy = load_policy(version)
    cc = policy.contacts.call_center
    for where, text in answers_of(policy):
        if "call center" in text.lower():
            assert cc.phone and cc.phone in text, (where, text)


# --- programme.yml cites a source for every data field ------------------------------


def _leaves(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key))
    else:
        yield path


NOT_DATA = ("label", "notes", "sources")


@pytest.mark.parametrize("version", VERSIONS)
def test_programme_cites_a_source_for_every_field(version: str) -> None:
    raw = _resolve(_read_file(DEFAULT_PATH)["versions"], version, ())
    sources = raw.get("sources") or {}
    assert all(str(text).strip() for text in sources.values())
    missing = []
    for leaf in _leaves({k: v for k, v in raw.items() if k not in NOT_DATA}):
        parts = leaf.split(".")
        covered = any(".".join(parts[:n]) in sources for n in range(1, len(parts) + 1))
        if not covered and _value(raw, parts) not in (None, {}, []):
            missing.append(leaf)
    assert missing == []


def _value(raw: dict[str, Any], parts: list[str]) -> Any:
    node: Any = raw
    for part in parts:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _has(raw: dict[str, Any], parts: list[str]) -> bool:
    node: Any = raw
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("version", VERSIONS)
def test_sources_name_only_fields_that_exist(version: str) -> None:
    raw = _resolve(_read_file(DEFAULT_PATH)["versions"], version, ())
    assert [k for k in raw.get("sources") or {} if not _has(raw, k.split("."))] == []


@pytest.mark.parametrize("version", VERSIONS)
def test_every_answer_speaks_plainly_to_kamu(version: str) -> None:
    for where, text in answers_of(load_policy(version)):
        words = re.findall(r"[\w=]+", text)
        assert "KYC" not in words and "=" not in words, (where, text)
        assert "Anda" not in words and "anda" not in words, (where, text)
