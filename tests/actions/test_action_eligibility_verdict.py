"""action_eligibility_verdict and action_cancel_form."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from rasa_sdk.events import ActiveLoop, SlotSet

from actions.eligibility import ActionCancelForm, ActionEligibilityVerdict
from bot.policy.eligibility import EligibilityAnswers, assess
from bot.policy.programme import load_policy

ELIGIBLE_2020 = {
    "elig_age": 30,
    "elig_citizen": True,
    "elig_in_education": False,
    "elig_excluded_occupation": False,
    "elig_prior_participant": False,
    "elig_social_aid": False,
}
ELIGIBLE_2023 = {
    **{k: v for k, v in ELIGIBLE_2020.items() if k != "elig_social_aid"},
    "elig_kk_count": 0,
}
ANSWER_FIELDS = {
    "elig_age": "age",
    "elig_citizen": "citizen",
    "elig_in_education": "in_education",
    "elig_excluded_occupation": "excluded_occupation",
    "elig_prior_participant": "prior_participant",
    "elig_kk_count": "kk_registered_count",
    "elig_social_aid": "receives_social_aid",
}


def _all_eligibility_slots(domain) -> set[str]:
    form_slots = domain["forms"]["eligibility_form"]["required_slots"]
    return {*form_slots, "elig_birth_date", "elig_unclear"}


def _tracker_after_form(ev, tracker_from, slots: dict[str, Any]):
    """The tracker right after the form was deactivated with ``slots`` filled."""
    return tracker_from(
        [
            ev.action("eligibility_form"),
            *[ev.slot(name, value) for name, value in slots.items()],
            {"event": "active_loop", "name": None},
            ev.slot("requested_slot", None),
        ]
    )


async def _verdict(
    ev, tracker_from, dispatcher, domain, slots: dict[str, Any]
) -> tuple[str, list]:
    events = await ActionEligibilityVerdict().run(
        dispatcher, _tracker_after_form(ev, tracker_from, slots), domain
    )
    (message,) = dispatcher.messages
    return str(message["text"]), events


def _expected(version: str | None, slots: dict[str, Any], today: date):
    answers = EligibilityAnswers(
        **{ANSWER_FIELDS[k]: v for k, v in slots.items() if k in ANSWER_FIELDS}
    )
    return assess(load_policy(version), answers, today)


async def test_eligible_applicant(
    ev, tracker_from, dispatcher, domain, fixed_today, sms_safe
) -> None:
    text, _ = await _verdict(ev, tracker_from, dispatcher, domain, ELIGIBLE_2020)

    expected = _expected(None, ELIGIBLE_2020, fixed_today)
    assert expected.eligible is True
    head = text.splitlines()[0].lower()
    assert "memenuhi syarat" in head and "belum" not in head
    assert expected.next_step in text
    sms_safe(text)


async def test_aid_receiver_under_2020_is_eligible_with_the_priority_warning(
    ev, tracker_from, dispatcher, domain, fixed_today
) -> None:
    slots = {**ELIGIBLE_2020, "elig_social_aid": True}

    text, _ = await _verdict(ev, tracker_from, dispatcher, domain, slots)

    expected = _expected(None, slots, fixed_today)
    assert expected.eligible is True and expected.reasons
    for reason in expected.reasons:
        assert reason in text
    assert expected.next_step in text


async def test_student_is_not_eligible(
    ev, tracker_from, dispatcher, domain, fixed_today, sms_safe
) -> None:
    slots = {"elig_age": 21, "elig_citizen": True, "elig_in_education": True}

    text, _ = await _verdict(ev, tracker_from, dispatcher, domain, slots)

    expected = _expected(None, slots, fixed_today)
    assert expected.eligible is False
    assert "belum memenuhi syarat" in text.splitlines()[0]
    assert "mahasiswa" in text.lower()
    for part in (*expected.reasons, expected.next_step):
        assert part in text
    sms_safe(text)


@pytest.mark.parametrize(("version", "eligible"), [("2020", True), ("2023", False)])
async def test_age_65_hits_the_cap_only_under_2023(
    version, eligible, ev, tracker_from, dispatcher, domain, use_policy, fixed_today
) -> None:
    use_policy(version)
    base = ELIGIBLE_2023 if version == "2023" else ELIGIBLE_2020
    slots = {**base, "elig_age": 65}

    text, _ = await _verdict(ev, tracker_from, dispatcher, domain, slots)

    head = text.splitlines()[0]
    if eligible:
        assert "belum" not in head
    else:
        max_age = load_policy("2023").eligibility.max_age
        assert max_age is not None and max_age < 65
        assert "belum memenuhi syarat" in head
        assert "65" in text and str(max_age) in text
        assert text.endswith(_expected("2023", slots, fixed_today).next_step)


async def test_too_young_by_birth_date_is_told_the_day_they_may_register(
    ev, tracker_from, dispatcher, domain, fixed_today
) -> None:
    born = date(fixed_today.year - 17, 1, 10)
    slots = {"elig_age": 17, "elig_birth_date": born.isoformat()}

    text, _ = await _verdict(ev, tracker_from, dispatcher, domain, slots)

    assert "belum memenuhi syarat" in text.splitlines()[0]
    assert str(fixed_today.year + 1) in text  # the year they turn 18


async def test_verdict_resets_every_eligibility_slot(
    ev, tracker_from, dispatcher, domain, fixed_today
) -> None:
    _, events = await _verdict(ev, tracker_from, dispatcher, domain, ELIGIBLE_2020)

    assert all(event["event"] == "slot" for event in events)
    assert {event["name"] for event in events} == _all_eligibility_slots(domain)
    assert all(event["value"] is None for event in events)


async def test_cancel_leaves_the_form_and_forgets_the_answers(
    ev, tracker_from, dispatcher, domain
) -> None:
    from tests.actions.conftest import build_tracker  # noqa: PLC0415

    tracker = build_tracker(
        [
            ev.action("eligibility_form"),
            {"event": "active_loop", "name": "eligibility_form"},
            ev.slot("elig_age", 30),
            ev.slot("requested_slot", "elig_citizen"),
            ev.action("action_listen"),
            ev.user("batal", "stop"),
        ],
        active_loop="eligibility_form",
    )

    events = await ActionCancelForm().run(dispatcher, tracker, domain)

    assert events[0] == ActiveLoop(None)
    assert SlotSet("requested_slot", None) in events
    reset = {e["name"] for e in events if e["event"] == "slot" and e["value"] is None}
    assert reset == _all_eligibility_slots(domain) | {"requested_slot"}
    assert [m["response"] for m in dispatcher.messages] == ["utter_form_cancelled"]
    assert "utter_form_cancelled" in domain["responses"]
