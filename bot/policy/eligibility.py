"""Pure eligibility rules: which questions to ask and the verdict.

Ages use exact calendar arithmetic. A person born on 29 February has their
birthday on 1 March in non-leap years (so they turn 18 on 1 March).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.policy.programme import Policy, format_date
from bot.policy.texts import render_text, section

QUESTIONS: tuple[str, ...] = (
    "birth_date",
    "citizen",
    "in_education",
    "excluded_occupation",
    "prior_participant",
    "kk_registered_count",
    "receives_social_aid",
)

# Rule codes; the next step follows the first failed rule in this order (the
# most permanent reason first, "wait until 18" last).
_NEXT_STEP_PRIORITY: tuple[str, ...] = (
    "prior_participant",
    "not_citizen",
    "too_old",
    "excluded_occupation",
    "in_education",
    "kk_cap",
    "social_aid_excluded",
    "too_young",
)


@dataclass(frozen=True)
class EligibilityAnswers:
    """What the applicant told us so far; None means not answered."""

    birth_date: date | None = None
    age: int | None = None
    citizen: bool | None = None
    in_education: bool | None = None
    excluded_occupation: bool | None = None
    prior_participant: bool | None = None
    kk_registered_count: int | None = None
    receives_social_aid: bool | None = None


@dataclass(frozen=True)
class Verdict:
    """Outcome of :func:`assess`; ``eligible`` None means not decided yet."""

    eligible: bool | None
    reasons: tuple[str, ...]
    next_step: str


def birthday_in(birth_date: date, year: int) -> date:
    """The birthday in ``year``; 29 February becomes 1 March in non-leap years."""
    try:
        return birth_date.replace(year=year)
    except ValueError:  # 29 February in a non-leap year
        return date(year, 3, 1)


def age_on(birth_date: date, today: date) -> int:
    """Completed years on ``today``; the birthday itself counts.

    Raises ``ValueError`` when ``birth_date`` is after ``today``.
    """
    if birth_date > today:
        raise ValueError("birth date is in the future")
    years = today.year - birth_date.year
    if today < birthday_in(birth_date, today.year):
        years -= 1
    return years


def date_turning(birth_date: date, age: int) -> date:
    """The day a person born on ``birth_date`` turns ``age``."""
    return birthday_in(birth_date, birth_date.year + age)


def _age(answers: EligibilityAnswers, today: date) -> int | None:
    if answers.birth_date is not None:
        return age_on(answers.birth_date, today)
    return answers.age


def _social_aid_cared(policy: Policy) -> bool:
    return policy.eligibility.social_aid != "allowed"


def _outcomes(
    policy: Policy, answers: EligibilityAnswers, today: date
) -> tuple[list[str], list[str]]:
    """Failed and warned rule codes, in :data:`QUESTIONS` order."""
    elig = policy.eligibility
    failed: list[str] = []
    warned: list[str] = []
    age = _age(answers, today)
    if age is not None and age < elig.min_age:
        failed.append("too_young")
    if age is not None and elig.max_age is not None and age > elig.max_age:
        # A cap that starts at a later wave refuses only those waves.
        (warned if elig.max_age_from_wave else failed).append(
            "too_old_from_wave" if elig.max_age_from_wave else "too_old"
        )
    if answers.citizen is False:
        failed.append("not_citizen")
    if answers.in_education:
        failed.append("in_education")
    if answers.excluded_occupation:
        failed.append("excluded_occupation")
    if answers.prior_participant:
        failed.append("prior_participant")
    count = answers.kk_registered_count
    if elig.kk_cap is not None and count is not None and count >= elig.kk_cap:
        failed.append("kk_cap")
    if answers.receives_social_aid:
        if elig.social_aid == "excluded":
            failed.append("social_aid_excluded")
        elif elig.social_aid == "deprioritised":
            warned.append("social_aid_deprioritised")
    return failed, warned


def _unanswered(policy: Policy, answers: EligibilityAnswers) -> list[str]:
    missing = {
        "birth_date": answers.birth_date is None and answers.age is None,
        "citizen": answers.citizen is None,
        "in_education": answers.in_education is None,
        "excluded_occupation": answers.excluded_occupation is None,
        "prior_participant": answers.prior_participant is None,
        "kk_registered_count": policy.eligibility.kk_cap is not None
        and answers.kk_registered_count is None,
        "receives_social_aid": _social_aid_cared(policy)
        and answers.receives_social_aid is None,
    }
    return [q for q in QUESTIONS if missing[q]]


def questions_needed(
    policy: Policy, answers: EligibilityAnswers, today: date
) -> list[str]:
    """Unanswered questions the policy cares about, in :data:`QUESTIONS` order.

    Empty as soon as a disqualifying answer is known.
    """
    failed, _ = _outcomes(policy, answers, today)
    if failed:
        return []
    return _unanswered(policy, answers)


def question_text(question: str, policy: Policy) -> str:
    """The Indonesian prompt for one of :data:`QUESTIONS`."""
    if question not in QUESTIONS:
        raise ValueError(f"Unknown eligibility question {question!r}")
    return render_text(section("eligibility")["questions"][question], policy)


def _next_step_for_failure(
    code: str, policy: Policy, answers: EligibilityAnswers
) -> str:
    steps = section("eligibility")["next_steps"]
    if code == "too_young" and answers.birth_date is not None:
        turning = date_turning(answers.birth_date, policy.eligibility.min_age)
        return render_text(
            steps["too_young_date"], policy, {"eligible_date": format_date(turning)}
        )
    return render_text(steps[code], policy)


def wave_age_refusal(
    policy: Policy, birth_date: date, today: date, wave: int | None
) -> str | None:
    """Why a person is too old for wave ``wave`` when the policy's age cap
    starts at a later wave (None: not refused, or no wave known)."""
    elig = policy.eligibility
    if wave is None or elig.max_age is None or elig.max_age_from_wave is None:
        return None
    age = age_on(birth_date, today)
    if wave < elig.max_age_from_wave or age <= elig.max_age:
        return None
    return render_text(
        section("eligibility")["reasons"]["too_old"], policy, {"age": age}
    )


def assess(policy: Policy, answers: EligibilityAnswers, today: date) -> Verdict:
    """Decide eligibility under ``policy`` from what is known on ``today``."""
    texts = section("eligibility")
    failed, warned = _outcomes(policy, answers, today)
    extra = {
        "age": _age(answers, today),
        "kk_count": answers.kk_registered_count,
    }
    reasons = tuple(
        render_text(texts["reasons"][code], policy, extra) for code in failed + warned
    )
    if failed:
        first = next(code for code in _NEXT_STEP_PRIORITY if code in failed)
        return Verdict(False, reasons, _next_step_for_failure(first, policy, answers))
    needed = _unanswered(policy, answers)
    if needed:
        ask = render_text(
            texts["next_steps"]["ask"],
            policy,
            {"question": question_text(needed[0], policy)},
        )
        return Verdict(None, reasons, ask)
    key = "eligible"
    if "too_old_from_wave" in warned:
        key = "eligible_before_wave"
    elif warned:
        key = "eligible_warning"
    return Verdict(True, reasons, render_text(texts["next_steps"][key], policy))
