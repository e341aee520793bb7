"""Tests for the pure eligibility rules."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from bot.policy.eligibility import (
    QUESTIONS,
    EligibilityAnswers,
    age_on,
    assess,
    date_turning,
    question_text,
    questions_needed,
)
from bot.policy.programme import Policy, format_date, load_policy

TODAY = date(2020, 4, 12)
VERSIONS = ("2020", "2020-10", "2021", "2023")


def ok_answers(**changes: object) -> EligibilityAnswers:
    """Answers of someone eligible under every version, with changes applied."""
    base = EligibilityAnswers(
        birth_date=date(1990, 8, 15),
        citizen=True,
        in_education=False,
        excluded_occupation=False,
        prior_participant=False,
        kk_registered_count=0,
        receives_social_aid=False,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def policy(version: str) -> Policy:
    return load_policy(version)


# --- age arithmetic -----------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "today", "age"),
    [
        (date(2002, 4, 12), date(2020, 4, 12), 18),  # 18th birthday today
        (date(2002, 4, 13), date(2020, 4, 12), 17),  # birthday tomorrow
        (date(2002, 4, 11), date(2020, 4, 12), 18),
        (date(2000, 2, 29), date(2018, 2, 28), 17),  # non-leap: birthday 1 March
        (date(2000, 2, 29), date(2018, 3, 1), 18),
        (date(2000, 2, 29), date(2020, 2, 28), 19),  # leap year: 29 Feb exists
        (date(2000, 2, 29), date(2020, 2, 29), 20),
        (date(1990, 1, 1), date(1990, 1, 1), 0),
        (date(1955, 12, 31), date(2020, 12, 30), 64),
        (date(1955, 12, 31), date(2020, 12, 31), 65),
    ],
)
def test_age_on(born: date, today: date, age: int) -> None:
    assert age_on(born, today) == age


def test_age_on_future_birth_date() -> None:
    with pytest.raises(ValueError):
        age_on(date(2021, 1, 1), TODAY)


@pytest.mark.parametrize(
    ("born", "turns_18"),
    [
        (date(2002, 4, 12), date(2020, 4, 12)),
        (date(2000, 2, 29), date(2018, 3, 1)),
        (date(1996, 2, 29), date(2014, 3, 1)),
    ],
)
def test_date_turning(born: date, turns_18: date) -> None:
    assert date_turning(born, 18) == turns_18


# --- verdicts -------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_fully_eligible(version: str) -> None:
    verdict = assess(policy(version), ok_answers(), TODAY)
    assert verdict.eligible is True
    assert verdict.reasons == ()
    assert policy(version).contacts.site_url in verdict.next_step
    assert "di sini" in verdict.next_step


@pytest.mark.parametrize("version", VERSIONS)
def test_18th_birthday_today_is_eligible(version: str) -> None:
    answers = ok_answers(birth_date=date(2002, 4, 12))
    assert assess(policy(version), answers, TODAY).eligible is True


@pytest.mark.parametrize("version", VERSIONS)
def test_day_before_18th_birthday_is_not(version: str) -> None:
    answers = ok_answers(birth_date=date(2002, 4, 13))
    verdict = assess(policy(version), answers, TODAY)
    assert verdict.eligible is False
    assert len(verdict.reasons) == 1 and "17" in verdict.reasons[0]
    assert "13 April 2020" in verdict.next_step


def test_29_february_birth_non_leap_year() -> None:
    answers = ok_answers(birth_date=date(2000, 2, 29))
    before = assess(policy("2020"), answers, date(2018, 2, 28))
    assert before.eligible is False
    assert format_date(date(2018, 3, 1)) in before.next_step
    assert assess(policy("2020"), answers, date(2018, 3, 1)).eligible is True


def test_29_february_birth_leap_year_birthday() -> None:
    # Born 29 Feb 2004: turns 20 on 29 Feb 2024 (a leap year) under 2023 rules.
    answers = ok_answers(birth_date=date(2004, 2, 29))
    assert age_on(date(2004, 2, 29), date(2024, 2, 29)) == 20
    assert assess(policy("2023"), answers, date(2024, 2, 29)).eligible is True


def test_young_age_only_next_step_without_date() -> None:
    verdict = assess(policy("2020"), ok_answers(birth_date=None, age=17), TODAY)
    assert verdict.eligible is False
    assert "18 tahun" in verdict.next_step


@pytest.mark.parametrize(
    ("version", "age", "eligible"),
    [
        ("2023", 64, True),
        ("2023", 65, False),
        ("2021", 64, True),
        ("2021", 65, True),  # the cap starts at wave 18: a warning, not a refusal
        ("2020", 65, True),
        ("2020", 90, True),
        ("2020-10", 80, True),
    ],
)
def test_age_cap(version: str, age: int, eligible: bool) -> None:
    answers = ok_answers(birth_date=None, age=age)
    verdict = assess(policy(version), answers, TODAY)
    assert verdict.eligible is eligible
    if not eligible:
        assert "64" in verdict.reasons[0]


def test_2021_age_cap_counts_from_wave_18() -> None:
    verdict = assess(policy("2021"), ok_answers(birth_date=None, age=65), TODAY)
    assert verdict.eligible is True
    assert "gelombang 18" in verdict.reasons[0] and "64" in verdict.reasons[0]
    assert "sebelum gelombang 18" in verdict.next_step


def test_age_cap_by_birth_date() -> None:
    p = policy("2023")
    today = date(2023, 6, 1)
    assert assess(p, ok_answers(birth_date=date(1958, 6, 2)), today).eligible is True
    assert assess(p, ok_answers(birth_date=date(1958, 6, 1)), today).eligible is False


def test_birth_date_wins_over_age() -> None:
    answers = ok_answers(birth_date=date(1990, 1, 1), age=10)
    assert assess(policy("2020"), answers, TODAY).eligible is True


@pytest.mark.parametrize(
    ("version", "count", "eligible"),
    [
        ("2021", 0, True),
        ("2021", 1, True),
        ("2021", 2, False),
        ("2023", 1, True),
        ("2023", 2, False),
        ("2023", 3, False),
        ("2020", 5, True),  # no cap in 2020
    ],
)
def test_kk_cap(version: str, count: int, eligible: bool) -> None:
    verdict = assess(policy(version), ok_answers(kk_registered_count=count), TODAY)
    assert verdict.eligible is eligible
    if not eligible:
        assert "KK" in verdict.reasons[0] and "2" in verdict.reasons[0]
        assert "KK" in verdict.next_step


@pytest.mark.parametrize(
    ("version", "eligible", "reasons"),
    [("2020", True, 1), ("2020-10", True, 1), ("2021", False, 1), ("2023", True, 0)],
)
def test_social_aid_per_version(version: str, eligible: bool, reasons: int) -> None:
    verdict = assess(policy(version), ok_answers(receives_social_aid=True), TODAY)
    assert verdict.eligible is eligible
    assert len(verdict.reasons) == reasons
    if version.startswith("2020"):
        assert "tidak diprioritaskan" in verdict.reasons[0]
        assert "tidak diprioritaskan" in verdict.next_step
        assert policy(version).contacts.site_url in verdict.next_step


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("changes", "fragment", "step_fragment"),
    [
        ({"citizen": False}, "WNI", "WNI"),
        ({"in_education": True}, "mahasiswa", "lulus"),
        ({"excluded_occupation": True}, "ASN", "menjabat"),
        ({"prior_participant": True}, "sekali seumur hidup", "dua kali"),
    ],
)
def test_excluded_groups(
    version: str, changes: dict[str, object], fragment: str, step_fragment: str
) -> None:
    verdict = assess(policy(version), ok_answers(**changes), TODAY)
    assert verdict.eligible is False
    assert len(verdict.reasons) == 1
    assert fragment in verdict.reasons[0]
    assert step_fragment in verdict.next_step


def test_several_failures_all_reported_permanent_one_leads() -> None:
    answers = ok_answers(birth_date=date(2005, 1, 1), prior_participant=True)
    verdict = assess(policy("2020"), answers, TODAY)
    assert verdict.eligible is False
    assert len(verdict.reasons) == 2
    assert "dua kali" in verdict.next_step


def test_undecided_asks_next_question() -> None:
    p = policy("2023")
    verdict = assess(p, EligibilityAnswers(age=30, citizen=True), TODAY)
    assert verdict.eligible is None
    assert verdict.reasons == ()
    assert question_text("in_education", p) in verdict.next_step


def test_undecided_keeps_warning() -> None:
    answers = EligibilityAnswers(age=30, receives_social_aid=True)
    verdict = assess(policy("2020"), answers, TODAY)
    assert verdict.eligible is None
    assert len(verdict.reasons) == 1


# --- questions ------------------------------------------------------------------

ALL = list(QUESTIONS)
WITHOUT_KK = [q for q in QUESTIONS if q != "kk_registered_count"]
WITHOUT_AID = [q for q in QUESTIONS if q != "receives_social_aid"]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2020", WITHOUT_KK),
        ("2020-10", WITHOUT_KK),
        ("2021", ALL),
        ("2023", WITHOUT_AID),
    ],
)
def test_questions_for_empty_answers(version: str, expected: list[str]) -> None:
    assert questions_needed(policy(version), EligibilityAnswers(), TODAY) == expected


@pytest.mark.parametrize("version", VERSIONS)
def test_questions_none_when_all_answered(version: str) -> None:
    assert questions_needed(policy(version), ok_answers(), TODAY) == []


@pytest.mark.parametrize("field", ["birth_date", "age"])
def test_age_or_birth_date_answers_birth_question(field: str) -> None:
    value: object = date(1990, 1, 1) if field == "birth_date" else 30
    answers = EligibilityAnswers(**{field: value})  # type: ignore[arg-type]
    assert "birth_date" not in questions_needed(policy("2021"), answers, TODAY)


def test_questions_keep_order_and_skip_answered() -> None:
    answers = EligibilityAnswers(citizen=True, prior_participant=False)
    assert questions_needed(policy("2021"), answers, TODAY) == [
        "birth_date",
        "in_education",
        "excluded_occupation",
        "kk_registered_count",
        "receives_social_aid",
    ]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "answers",
    [
        EligibilityAnswers(citizen=False),
        EligibilityAnswers(age=15),
        EligibilityAnswers(birth_date=date(2003, 1, 1)),
        EligibilityAnswers(in_education=True),
        EligibilityAnswers(excluded_occupation=True),
        EligibilityAnswers(prior_participant=True),
    ],
)
def test_questions_stop_early_on_disqualifying_answer(
    version: str, answers: EligibilityAnswers
) -> None:
    assert questions_needed(policy(version), answers, TODAY) == []


@pytest.mark.parametrize(
    ("version", "answers", "stops"),
    [
        ("2021", EligibilityAnswers(kk_registered_count=2), True),
        ("2020", EligibilityAnswers(kk_registered_count=2), False),
        ("2021", EligibilityAnswers(receives_social_aid=True), True),
        ("2020", EligibilityAnswers(receives_social_aid=True), False),  # warning only
        ("2023", EligibilityAnswers(age=70), True),
        ("2020", EligibilityAnswers(age=70), False),
    ],
)
def test_questions_stop_depends_on_version(
    version: str, answers: EligibilityAnswers, stops: bool
) -> None:
    assert (questions_needed(policy(version), answers, TODAY) == []) is stops


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("question", QUESTIONS)
def test_question_texts(version: str, question: str) -> None:
    text = question_text(question, policy(version))
    assert "?" in text and "{" not in text and "}" not in text


def test_question_text_unknown() -> None:
    with pytest.raises(ValueError):
        question_text("favourite_colour", policy("2020"))
