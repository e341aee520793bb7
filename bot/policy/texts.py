"""User-facing texts (``answers.yml``) filled with values from a :class:`Policy`.

Templates use ``str.format`` placeholders. :func:`policy_values` turns a policy
into the strings they need (money formatted, lists joined), so no number is
written in a template. Nothing is read at import time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from bot.policy.programme import (
    DAYS_ID,
    Policy,
    format_datetime,
    format_number,
    format_rupiah,
)
from bot.policy.yaml_file import read_yaml

TEXTS_PATH = Path(__file__).with_name("answers.yml")

Template = str | Mapping[str, Any]

_SPACES = re.compile(r"[ \t\r\n]+")


@lru_cache(maxsize=4)
def load_texts(path: Path = TEXTS_PATH) -> dict[str, Any]:
    """Parse the texts file once per path."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("intents"), dict):
        raise ValueError(f"{path}: expected a mapping with 'intents'")
    return data


def join_list(items: tuple[str, ...], last: str = "atau") -> str:
    """Join ``("a", "b", "c")`` as ``"a, b atau c"``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def selectors(policy: Policy) -> dict[str, str]:
    """Values that pick a variant of a ``when:`` template."""
    elig = policy.eligibility
    test = policy.test

    def cap(value: int | None, note: str | None) -> str:
        if value is None:
            return "none"
        return "cap_noted" if note else "cap"

    known_test = None not in (test.questions, test.minutes, test.result_minutes)
    test_format = "known" if known_test else "unknown"
    if not known_test and test.minutes is not None:
        test_format = "minutes"
    age_cap = cap(elig.max_age, elig.max_age_note)
    if elig.max_age is not None and elig.max_age_from_wave is not None:
        age_cap = "from_wave"
    cc = policy.contacts.call_center
    payout = policy.incentive
    return {
        "social_aid": elig.social_aid,
        "age_cap": age_cap,
        "kk_cap": cap(elig.kk_cap, elig.kk_cap_note),
        "incentive": "monthly" if policy.benefits.incentive_monthly else "once",
        "test_format": test_format,
        "waves": "known" if policy.waves else "none",
        "call_center": "phone" if cc.phone and cc.has_hours else "form",
        "toll_free": "yes" if cc.toll_free else "no",
        "cc_channels": "some" if cc.channels else "none",
        "otp_limit": "known" if policy.otp.max_resends is not None else "unknown",
        "review": "dashboard" if policy.training.review_on_dashboard else "any",
        "change_phone": policy.account.change_phone,
        "face_check": "yes" if policy.registration.face_check else "no",
        "partner_cs": "known" if payout.partner_cs else "none",
        "statement_email": "known" if policy.contacts.participation_email else "none",
        "payout": (
            "none"
            if payout.payout_workdays_max is None
            else "max"
            if payout.payout_workdays_min is None
            else "range"
        ),
    }


def weekdays_label(weekdays: tuple[int, ...], daily: str) -> str:
    """``(0..6)`` -> ``daily``; ``(0..4)`` -> ``Senin-Jumat``; else a list."""
    days = sorted(set(weekdays))
    if len(days) == 7:
        return daily
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        return f"{DAYS_ID[days[0]]}-{DAYS_ID[days[-1]]}"
    return join_list(tuple(DAYS_ID[d] for d in days), "dan")


def _opt(value: int | str | None) -> str:
    return "" if value is None else str(value)


def _base_values(policy: Policy, texts: Mapping[str, Any]) -> dict[str, str]:
    elig, ben, con = policy.eligibility, policy.benefits, policy.contacts
    cc, test, sel = con.call_center, policy.test, policy.selection
    wave = policy.waves[-1] if policy.waves else None
    days = weekdays_label(cc.weekdays, str(texts["call_center"]["daily"]))
    return {
        "label": policy.label,
        "site": con.site,
        "site_url": con.site_url,
        "faq_url": con.faq_url,
        "email_domain": con.email_domain,
        "info_email": con.info_email,
        "survey_email": con.survey_email,
        "participation_email": _opt(con.participation_email),
        "halo_dukcapil": con.halo_dukcapil,
        "min_age": str(elig.min_age),
        "max_age": _opt(elig.max_age),
        "max_age_note": _opt(elig.max_age_note),
        "max_age_from_wave": _opt(elig.max_age_from_wave),
        "kk_cap": _opt(elig.kk_cap),
        "kk_cap_note": _opt(elig.kk_cap_note),
        "aid_programmes": join_list(elig.social_aid_programmes),
        "excluded_list": join_list(elig.excluded_occupations, "dan"),
        "excluded_brief": elig.excluded_brief,
        "priority_note": _opt(elig.priority_note),
        "training_balance": format_rupiah(ben.training_balance),
        "incentive_amount": format_rupiah(ben.incentive_amount),
        "incentive_payments": str(ben.incentive_payments),
        "incentive_total": format_rupiah(ben.incentive_total),
        "survey_incentive": format_rupiah(ben.survey_incentive),
        "survey_count": str(ben.survey_count),
        "survey_total": format_rupiah(ben.survey_total),
        "total": format_rupiah(ben.total),
        "first_purchase_days": str(policy.training.first_purchase_days),
        "banks": join_list(policy.incentive.banks),
        "ewallets": join_list(policy.incentive.ewallets),
        "call_center_channels": join_list(cc.channels),
        "call_center_phone": _opt(cc.phone),
        "call_center_days": days if cc.has_hours else "",
        "call_center_hours": (
            f"{cc.opens}-{cc.closes} {cc.timezone}" if cc.has_hours else ""
        ),
        "partner_cs": join_list(
            tuple(f"{name} {number}" for name, number in policy.incentive.partner_cs),
            "dan",
        ),
        "payout_workdays_min": _opt(policy.incentive.payout_workdays_min),
        "payout_workdays_max": _opt(policy.incentive.payout_workdays_max),
        "nik_digits": str(policy.registration.nik_digits),
        "kk_digits": str(policy.registration.kk_digits),
        "card_digits": str(policy.registration.card_digits),
        "email_chars": policy.registration.email_chars,
        "otp_max_resends": _opt(policy.otp.max_resends),
        "otp_wait_hours": _opt(policy.otp.wait_hours),
        "photo_formats": "/".join(policy.photo.formats),
        "photo_max_mb": str(policy.photo.max_mb),
        "test_name": test.name,
        "test_questions": _opt(test.questions),
        "test_minutes": _opt(test.minutes),
        "test_result_minutes": _opt(test.result_minutes),
        "result_days_min": str(sel.result_days_min),
        "result_days_max": str(sel.result_days_max),
        "failures_for_statement": str(sel.failures_for_statement),
        "wave_number": _opt(wave.number if wave else None),
        "wave_quota": format_number(wave.quota) if wave else "",
        "wave_opens": format_datetime(wave.opens) if wave else "",
        "wave_closes": format_datetime(wave.closes) if wave else "",
    }


def policy_values(policy: Policy, path: Path = TEXTS_PATH) -> dict[str, str]:
    """All placeholder values for ``policy``, fragments included."""
    return dict(_policy_values(policy, path))


@lru_cache(maxsize=32)
def _policy_values(policy: Policy, path: Path) -> tuple[tuple[str, str], ...]:
    texts = load_texts(path)
    values = _base_values(policy, texts)
    chosen = selectors(policy)
    for name, template in (texts.get("fragments") or {}).items():
        values[str(name)] = _fill(_pick(template, chosen), values, keep_edges=True)
    return tuple(values.items())


def _pick(template: Template, chosen: Mapping[str, str]) -> str:
    """Resolve a ``when:`` mapping to the variant for this policy."""
    if isinstance(template, str):
        return template
    selector = str(template["when"])
    variant = chosen[selector]
    if variant not in template:
        raise KeyError(f"template has no variant {variant!r} for {selector!r}")
    return str(template[variant])


def _fill(template: str, values: Mapping[str, object], keep_edges: bool = False) -> str:
    text = template.format_map(values)
    if keep_edges:
        return text
    return _SPACES.sub(" ", text).strip()


def render_text(
    template: Template,
    policy: Policy,
    extra: Mapping[str, object] | None = None,
    path: Path = TEXTS_PATH,
) -> str:
    """Fill ``template`` (string or ``when:`` mapping) from ``policy``."""
    values: dict[str, object] = dict(policy_values(policy, path))
    if extra:
        values.update(extra)
    return _fill(_pick(template, selectors(policy)), values)


def section(name: str, path: Path = TEXTS_PATH) -> dict[str, Any]:
    """One top-level section of the texts file (``eligibility``, ...)."""
    return cast(dict[str, Any], load_texts(path)[name])
