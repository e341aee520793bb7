"""Every text of the catalogue, for every policy version and channel, filled
with the longest plausible values: GSM-7 only, every SMS page at most two
segments, the question the person must answer on the first page, "kamu" (never
"Anda"), no jargon; and domain.yml's responses are the catalogue's."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.channels.base import SMS, TELEGRAM, Button, Reply
from bot.channels.sms.gsm7 import is_gsm7, segment_info
from bot.channels.sms.render import MAX_SEGMENTS, render_sms
from bot.policy.answers import call_center_text
from bot.policy.catalogue import entries, fields, fill, say, variant
from bot.policy.programme import (
    WIB,
    Policy,
    format_date,
    format_datetime,
    format_number,
    known_versions,
    load_policy,
)
from bot.policy.texts import policy_values
from bot.rasa_nlg import RENDERED

DOMAIN = Path(__file__).resolve().parents[2] / "domain.yml"
CHANNELS = (TELEGRAM, SMS)
NOT_SMS = ("mail.",)
"""Sections that never go out as SMS (e-mail): checked for voice and jargon."""
JARGON = {
    "KYC": re.compile(r"\bKYC\b", re.IGNORECASE),
    '"=" as a word': re.compile(r"(?<!\S)=(?!\S)"),
    "Anda": re.compile(r"\bAnda\b", re.IGNORECASE),
    "a placeholder left": re.compile(r"[{}]"),
    "a code word": re.compile(r"\b(?:None|null|TODO|utter_\w+|action_\w+)\b"),
}
_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?=\S))+[.!?]*")
_ASKS = re.compile(
    r"^(?:Ketik|Balas|Jawab|Tulis|Berikutnya)\b"  # what to type, what to do next
    r"|\b(?:ketik|balas)\b[^.!?]*\b[A-Z]{3,}\b"  # "... ketik GABUNG ..."
)

LATE_DEADLINE = datetime(2026, 9, 30, 16, 59)  # naive UTC: 23.59 WIB, long month
LONG_EMAIL = "muhammad.rizky.adi.pratama@students.ugm.ac.id"


def _longest(texts: list[str]) -> str:
    return max(texts, key=len)


def _under(prefix: str, policy: Policy, **values: object) -> list[str]:
    """Every text under ``prefix`` rendered (its own fields from ``values``)."""
    return [say(key, policy, **values) for key in entries() if key.startswith(prefix)]


@lru_cache(maxsize=8)
def samples(version: str) -> dict[str, dict[str, object]]:
    """Realistic worst-case values by field; ``""`` holds the defaults and a
    section name the values that mean something else there."""
    policy = load_policy(version)
    when = format_datetime(LATE_DEADLINE.replace(tzinfo=timezone.utc))
    masked = f"{LONG_EMAIL[:2]}***@{LONG_EMAIL.split('@')[1]}"
    closed_saturday = datetime(2026, 9, 26, 22, 0, tzinfo=WIB)
    next_values = {
        "number": 999,
        "closes": when,
        "opens": when,
        "date": format_date(date(2026, 9, 30)),
    }
    next_values["by"] = _longest(
        _under("status.next.first_training_", policy, date=next_values["date"])
    )
    nexts = _under("status.next.", policy, **next_values) + [
        say("results.selected_next", policy, deadline=when),
        say("results.revoked_next", policy, deadline=when),
    ]
    reasons = sorted(_under("verification.reasons.", policy), key=len)
    eligibility_reasons = sorted(
        _under("eligibility.reasons.", policy, age=120, kk_count=20), key=len
    )
    mismatch = say("status.short_reasons.data_mismatch")
    failed_nik = say("status.nik_failed", reason=mismatch)
    base: dict[str, object] = {
        "age": 120,
        "attempts_left": 4,
        "batch": say("status.batch_name", number=999),
        "by": next_values["by"],
        "call_center": call_center_text(policy, closed_saturday),
        "cap": 2,
        "card": say("validation.kk_card"),
        "closes": when,
        "code": "123456",
        "date": format_date(date(2026, 9, 30)),
        "day": "hari Selasa",
        "days": 3650,
        "deadline": when,
        "digits": 16,
        "eligible_date": format_date(date(2026, 9, 30)),
        "email": masked,
        "hint": say("eligibility_form.age_hint"),
        "hours": 24,
        "instead": " "
        + _longest(_under("join.instead_", policy, number=999, opens=when)),
        "key": "9",
        "kk_count": 20,
        "later": say("registration.later_minutes", minutes=60),
        "lines": "\n".join(
            say(
                "status.batch_line",
                number=997 + n,
                closes=when,
                places=format_number(100_000),
            )
            for n in range(3)
        ),
        "minutes": 90,
        "next": _longest(nexts),
        "next_open": say(
            "call_center.next_open", policy, day="Minggu", time="08.00", timezone="WIB"
        ),
        "nik": failed_nik,
        "number": 999,
        "opens": when,
        "options": f"{LONG_EMAIL} atau {LONG_EMAIL.replace('.id', '')}",
        "parts": "tanggal dan bulan dan tahun",
        "places": format_number(100_000),
        "position": 9999,
        "province": "99",
        "purpose": _longest(_under("mail.purposes.", policy)),
        "question": _longest(
            _under("eligibility.questions.", policy)
            + [say("responses.utter_ask_elig_kk_count")]
        ),
        "reason": reasons[-1],
        "reasons": f" {eligibility_reasons[-1]} {eligibility_reasons[-2]}",
        "selection": say("status.result_revoked"),
        "shown": "spasi _ + -",
        "state": failed_nik,
        "time": "08.00",
        "timezone": "WIB",
        "typed": 15,
        "values": "nama M*** R*** A*** P***, NIK 3174********0001, KK "
        f"3174********0001, lahir **-**-1990, email {masked}, HP +62812*****890",
        "wait": "23 jam 59 menit",
        "warning": say("validation.email_suggest", options=LONG_EMAIL),
        "when": "hari Selasa pukul 07.30",
        "where": ", bagian tanggal dan bulan dan tahun",
    }
    base["statement"] = say("results.statement_hint", policy)
    base["why"] = _longest(_under("results.exclusion_reasons.", policy, cap=2))
    return {
        "": base,
        "status": {"email": say("status.email_verified")},
        "gateway": {"wait": say("gateway.wait_minutes", minutes=90)},
        "handoff": {
            "days": "Senin, Selasa, Kamis, Sabtu",
            "opens": "07.30",
            "closes": "16.30",
            "day": "hari Selasa",
        },
        "join": {
            "deadline": say("status.next.first_training", policy, by=base["by"]),
        },
        "results": {"days": 30},
        "mail": {"minutes": 15},
    }


def values_for(key: str, version: str, channel: str) -> dict[str, object]:
    """The sample values for the entry at ``key`` (a status card as the channel
    renders it)."""
    table = samples(version)
    values = {**table[""], **table.get(key.split(".")[0], {})}
    values["status"] = say(
        "status.card",
        None,
        channel,
        **{name: values[name] for name in ("nik", "batch", "selection", "next")},
        email=say("status.email_verified"),
    )
    return values


@lru_cache(maxsize=1)
def response_buttons() -> dict[str, tuple[Button, ...]]:
    """The buttons domain.yml gives each response (but those Rasa renders from
    the policy, `bot.rasa_nlg.RENDERED`: tests/unit/test_rasa_nlg.py)."""
    domain = yaml.safe_load(DOMAIN.read_text(encoding="utf-8"))
    return {
        name: tuple(
            Button(str(b["title"]), str(b["payload"]))
            for b in variants[0].get("buttons", ())
        )
        for name, variants in domain["responses"].items()
        if name not in RENDERED
    }


def render(key: str, version: str, channel: str) -> str:
    """The entry at ``key`` as ``channel`` gets it under ``version``."""
    policy = load_policy(version)
    text = variant(entries()[key], policy, channel)
    values: dict[str, Any] = dict(policy_values(policy))
    values.update(values_for(key, version, channel))
    missing = fields(text) - set(values)
    assert not missing, f"{key}: no sample value for {sorted(missing)}"
    return fill(text, values)


def questions(text: str) -> list[str]:
    """What the person must answer: the sentences that ask, and the commands
    that say what to type."""
    found = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group().strip()
        if sentence.endswith("?") or _ASKS.search(sentence):
            found.append(sentence)
    return found


CASES = [
    (key, version, channel)
    for key in sorted(entries())
    for version in known_versions()
    for channel in CHANNELS
]


@pytest.mark.parametrize(("key", "version", "channel"), CASES)
def test_every_text_is_short_plain_and_asks_on_the_first_page(
    key: str, version: str, channel: str
) -> None:
    text = render(key, version, channel)
    assert is_gsm7(text), f"{key} ({version}): not GSM-7: {text!r}"
    for name, pattern in JARGON.items():
        assert not pattern.search(text), f"{key} ({version}): {name}: {text!r}"
    if channel != SMS or key.startswith(NOT_SMS):
        return
    name = key.split(".", 1)[1] if key.startswith("responses.") else ""
    buttons = response_buttons().get(name, ())
    bodies, _ = render_sms([Reply(text=text, buttons=buttons)], {})
    pages = [str(body["text"]) for body in bodies]
    for page in pages:
        info = segment_info(page)
        assert info.encoding == "GSM-7" and info.segments <= MAX_SEGMENTS, (key, page)
    if not text:
        return  # an optional fragment left empty by this policy
    first = " ".join(pages[0].split())
    for question in questions(text):
        assert " ".join(question.split()) in first, (
            f"{key} ({version}): {question!r} is not on the first SMS page: "
            f"{pages[0]!r}"
        )
    if buttons:
        assert len(pages) == 1, f"{key}: the menu is not with its question"


def test_the_walk_covers_every_kind_of_text() -> None:
    keys = set(entries())
    for section in (
        "responses",
        "buttons",
        "intents",
        "eligibility",
        "call_center",
        "media",
        "registration",
        "status",
        "join",
        "results",
        "verification",
        "validation",
        "privacy",
        "handoff",
        "gateway",
        "sms",
        "telegram",
        "console",
        "mail",
    ):
        assert any(key.startswith(f"{section}.") for key in keys), section
    assert len(keys) > 300


def test_the_checks_catch_what_they_are_for() -> None:
    assert JARGON["Anda"].search("Silakan ketik nomor Anda.")
    assert JARGON["KYC"].search("Lakukan KYC dulu.")
    assert JARGON['"=" as a word'].search("Saldo = Rp1.000.000")
    assert not JARGON['"=" as a word'].search("a=b")
    assert questions(
        "Halo. Setuju? Ketik YA untuk lanjut. Buka www.prakerja.go.id dulu.\n"
        "Berikutnya: tunggu. Lalu tulis masalahmu. Kalau mau, ketik STATUS."
    ) == [
        "Setuju?",
        "Ketik YA untuk lanjut.",
        "Berikutnya: tunggu.",
        "Kalau mau, ketik STATUS.",
    ]
    long_intro = "Kalimat panjang sekali untuk mengisi layar. " * 9
    [first], state = render_sms([Reply(text=long_intro + "Mau lanjut?")], {})
    assert "Mau lanjut?" not in first["text"] and state["pages"]


@pytest.mark.parametrize("name", sorted(response_buttons()))
def test_domain_responses_are_the_catalogue(name: str) -> None:
    domain = yaml.safe_load(DOMAIN.read_text(encoding="utf-8"))
    [response] = domain["responses"][name]
    for version in known_versions():
        assert response["text"] == say(f"responses.{name}", load_policy(version))
    titles = set(_under("buttons.", load_policy(), number=1))
    for button in response.get("buttons", ()):
        assert button["title"] in titles, button


def test_every_catalogue_response_is_in_the_domain() -> None:
    names = {key.split(".", 1)[1] for key in entries() if key.startswith("responses.")}
    assert names == set(response_buttons())
