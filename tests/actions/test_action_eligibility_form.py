"""validate_eligibility_form, run whole as the action server runs it.

Each tracker is what Rasa sends after the user answered inside the form: the
active loop is eligibility_form, ``requested_slot`` names the question and the
slot holds the raw text the ``from_text`` mapping extracted (or the entity
value at activation). The assertions cover the validated values, the next
``requested_slot`` and the messages sent.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.eligibility import ValidateEligibilityForm
from actions.services import services
from bot.messages.models import Conversation
from bot.policy.eligibility import age_on
from bot.privacy.vault import TOKEN_PATTERN

AGE, BIRTH = "elig_age", "elig_birth_date"
CITIZEN, EDUCATION = "elig_citizen", "elig_in_education"
OCCUPATION, PRIOR = "elig_excluded_occupation", "elig_prior_participant"
KK, AID = "elig_kk_count", "elig_social_aid"
REQUESTED = "requested_slot"

# Answers that keep an applicant eligible, by slot.
GOOD_ANSWERS = {
    AGE: ("umurku 27 tahun", 27),
    CITIZEN: ("iya wni", True),
    EDUCATION: ("ngga, udah lulus", False),
    OCCUPATION: ("bukan", False),
    PRIOR: ("blm pernah", False),
    KK: ("belum ada", 0),
    AID: ("gak dapet", False),
}


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Slot values set by ``events`` (last one wins), failing on other events."""
    values: dict[str, Any] = {}
    for event in events:
        assert event["event"] == "slot", f"unexpected event {event!r}"
        values[event["name"]] = event["value"]
    return values


async def validate(
    form_tracker,
    domain,
    requested_slot: str | None,
    text: str,
    answered: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the validator on one answer; return (slot events, messages)."""
    dispatcher = CollectingDispatcher()
    tracker = form_tracker(requested_slot, text, answered=answered, **kwargs)
    events = await ValidateEligibilityForm().run(dispatcher, tracker, domain)
    return slot_events(events), dispatcher.messages


def test_validator_covers_every_form_slot(domain) -> None:
    form_slots = domain["forms"]["eligibility_form"]["required_slots"]
    assert set(GOOD_ANSWERS) == set(form_slots)
    for slot in form_slots:
        assert hasattr(ValidateEligibilityForm, f"validate_{slot}")
        assert f"utter_ask_{slot}" in domain["responses"]


# --- age and birth date -------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "15-08-1990",
        "15/08/1990",
        "15.8.1990",
        "1990-08-15",
        "15 agustus 1990",
        "lahir 15 Agt 1990",
        "tgl lahir saya 15 AGUSTUS 1990",
        "15081990",
    ],
)
async def test_birth_date_formats_give_age_and_iso_date(
    text, form_tracker, domain, fixed_today
) -> None:
    slots, messages = await validate(form_tracker, domain, AGE, text)

    assert slots[AGE] == age_on(date(1990, 8, 15), fixed_today)
    assert isinstance(slots[AGE], int)
    assert slots[BIRTH] is None  # outside the gateway no date is kept
    assert slots[REQUESTED] == CITIZEN
    assert messages == []


async def test_the_birth_date_is_kept_as_a_token(
    form_tracker, domain, fixed_today, action_sessions
) -> None:
    """In a gateway conversation the date is kept, as a token only."""
    tracker = form_tracker(AGE, "lahir 15-08-1990")
    with action_sessions() as session, session.begin():
        session.add(
            Conversation(
                channel="sms", address="+6281200000001", pseudonym=tracker.sender_id
            )
        )
    events = await ValidateEligibilityForm().run(
        CollectingDispatcher(), tracker, domain
    )
    slots = slot_events(events)

    assert slots[AGE] == age_on(date(1990, 8, 15), fixed_today)
    assert TOKEN_PATTERN.fullmatch(slots[BIRTH])
    assert services().vault.reveal(tracker.sender_id, slots[BIRTH]) == "1990-08-15"


async def test_age_from_birth_date_counts_the_birthday(
    form_tracker, domain, fixed_today
) -> None:
    on_birthday = f"{fixed_today.day}-{fixed_today.month}-2006"
    day_after = f"{fixed_today.day + 1}-{fixed_today.month}-2006"

    slots_today, _ = await validate(form_tracker, domain, AGE, on_birthday)
    slots_tomorrow, _ = await validate(form_tracker, domain, AGE, day_after)

    assert slots_today[AGE] == fixed_today.year - 2006
    assert slots_tomorrow[AGE] == fixed_today.year - 2006 - 1


@pytest.mark.parametrize(
    ("text", "age"),
    [("27", 27), ("umur 27", 27), ("27 thn", 27), ("usia saya 45 tahun", 45)],
)
async def test_plain_age_is_an_int(text, age, form_tracker, domain) -> None:
    slots, messages = await validate(form_tracker, domain, AGE, text)

    assert slots[AGE] == age
    assert slots.get(BIRTH) is None
    assert slots[REQUESTED] == CITIZEN
    assert messages == []


async def test_age_entity_given_early_is_validated_at_activation(
    form_tracker, domain
) -> None:
    # "cek aku bisa ikut ga, umurku 23": the age entity fills elig_age before
    # the form asks anything, so the first question is the next one.
    slots, messages = await validate(
        form_tracker,
        domain,
        None,
        "cek aku bisa ikut ga, umurku 23",
        intent="check_eligibility",
        slot=AGE,
        value="23",
        entities=[{"entity": "age", "value": "23", "start": 29, "end": 31}],
    )

    assert slots[AGE] == 23
    assert slots[REQUESTED] == CITIZEN
    assert messages == []


@pytest.mark.parametrize(
    "text",
    [
        "ga tau",
        "32-13-1990",
        "15-08-2090",
        "lahir kapan ya",
        "kapan2 aja",  # the reduplication digit is no age
        "lahir tahun 90an",  # a decade is no age
    ],
)
async def test_unreadable_or_future_birth_date_is_rejected_with_a_message(
    text, form_tracker, domain, fixed_today, sms_safe
) -> None:
    slots, messages = await validate(form_tracker, domain, AGE, text)

    assert slots[AGE] is None
    assert slots[REQUESTED] == AGE
    assert len(messages) == 1
    sms_safe(messages[0]["text"])


# --- yes/no answers -----------------------------------------------------------

YES = ["ya", "iya", "iyaa", "y", "yoi", "bener", "betul kak", "Ya, saya WNI"]
NO = ["tidak", "gak", "ga", "nggak", "gk", "tdk", "enggak kok", "bukan", "TIDAK"]


@pytest.mark.parametrize("text", YES)
async def test_informal_yes_is_true(text, form_tracker, domain) -> None:
    slots, messages = await validate(
        form_tracker, domain, CITIZEN, text, answered={AGE: 30}, intent="affirm"
    )

    assert slots[CITIZEN] is True
    assert slots[REQUESTED] == EDUCATION
    assert messages == []


@pytest.mark.parametrize("text", [*NO, "blm", "belom pernah"])
async def test_informal_no_is_false(text, form_tracker, domain) -> None:
    answered = {AGE: 30, CITIZEN: True, EDUCATION: False, OCCUPATION: False}

    slots, messages = await validate(
        form_tracker, domain, PRIOR, text, answered=answered, intent="deny"
    )

    assert slots[PRIOR] is False
    assert slots[REQUESTED] == AID
    assert messages == []


@pytest.mark.parametrize("text", ["ga tau", "mungkin", "hmm", "apa maksudnya"])
async def test_unclear_yes_no_is_asked_again(
    text, form_tracker, domain, sms_safe
) -> None:
    slots, messages = await validate(
        form_tracker, domain, CITIZEN, text, answered={AGE: 30}, intent="nlu_fallback"
    )

    assert slots[CITIZEN] is None
    assert slots[REQUESTED] == CITIZEN
    assert len(messages) == 1
    assert "ya" in messages[0]["text"] and "tidak" in messages[0]["text"]
    sms_safe(messages[0]["text"])


# --- family card count (asked from the 2021 scheme on) --------------------------

BEFORE_KK = {AGE: 30, CITIZEN: True, EDUCATION: False, OCCUPATION: False, PRIOR: False}


@pytest.mark.parametrize(
    ("text", "count"),
    [("0", 0), ("belum ada", 0), ("1 orang", 1), ("satu", 1), ("cuma 1", 1)],
)
async def test_kk_count_text_is_an_int(
    text, count, form_tracker, domain, use_policy
) -> None:
    use_policy("2023")

    slots, messages = await validate(form_tracker, domain, KK, text, answered=BEFORE_KK)

    assert slots[KK] == count
    assert slots[REQUESTED] is None  # 2023 asks nothing after the KK question
    assert messages == []


async def test_kk_count_at_the_cap_ends_the_form(
    form_tracker, domain, use_policy
) -> None:
    use_policy("2021")

    slots, _ = await validate(form_tracker, domain, KK, "dua", answered=BEFORE_KK)

    assert slots[KK] == 2
    assert slots[REQUESTED] is None  # social aid is not asked any more


async def test_unreadable_kk_count_is_asked_again(
    form_tracker, domain, use_policy, sms_safe
) -> None:
    use_policy("2023")

    slots, messages = await validate(
        form_tracker, domain, KK, "banyak deh", answered=BEFORE_KK
    )

    assert slots[KK] is None
    assert slots[REQUESTED] == KK
    assert len(messages) == 1
    sms_safe(messages[0]["text"])


# --- which questions each policy asks -----------------------------------------


async def walk_form(form_tracker, domain) -> list[str]:
    """Answer every question eligibly; return the questions in the order asked."""
    asked = [AGE]
    answered: dict[str, Any] = {}
    while True:
        requested = asked[-1]
        text, expected = GOOD_ANSWERS[requested]
        slots, messages = await validate(
            form_tracker, domain, requested, text, answered=answered
        )
        assert messages == []
        assert slots[requested] == expected
        answered.update({k: v for k, v in slots.items() if k != REQUESTED})
        assert len(asked) <= len(GOOD_ANSWERS), f"form does not end: {asked}"
        if slots[REQUESTED] is None:
            return asked
        asked.append(slots[REQUESTED])


async def test_policy_2020_asks_social_aid_but_not_the_kk_question(
    form_tracker, domain
) -> None:
    assert await walk_form(form_tracker, domain) == [
        AGE,
        CITIZEN,
        EDUCATION,
        OCCUPATION,
        PRIOR,
        AID,
    ]


async def test_policy_2023_asks_the_kk_question_but_not_social_aid(
    form_tracker, domain, use_policy
) -> None:
    use_policy("2023")

    assert await walk_form(form_tracker, domain) == [
        AGE,
        CITIZEN,
        EDUCATION,
        OCCUPATION,
        PRIOR,
        KK,
    ]


async def test_policy_2021_asks_kk_then_social_aid(
    form_tracker, domain, use_policy
) -> None:
    use_policy("2021")
    answered = dict(BEFORE_KK)

    after_prior, _ = await validate(
        form_tracker, domain, PRIOR, "belum", answered=answered
    )
    answered[KK] = 0
    after_kk, _ = await validate(form_tracker, domain, KK, "0", answered=answered)
    after_aid, _ = await validate(form_tracker, domain, AID, "tidak", answered=answered)

    # Under 2021 every form slot is relevant, so rasa_sdk leaves the next
    # question to Rasa's FormAction (first empty slot in domain order) unless
    # the validator names it; both give the same order.
    def next_slot(slots: dict[str, Any], filled: dict[str, Any]) -> Any:
        if REQUESTED in slots:
            return slots[REQUESTED]
        order = domain["forms"]["eligibility_form"]["required_slots"]
        merged = {**filled, **slots}
        return next((s for s in order if merged.get(s) is None), None)

    assert after_prior[PRIOR] is False
    assert next_slot(after_prior, {**BEFORE_KK}) == KK
    assert after_kk[KK] == 0
    assert next_slot(after_kk, {**BEFORE_KK, PRIOR: False}) == AID
    assert after_aid[AID] is False
    assert next_slot(after_aid, {**BEFORE_KK, PRIOR: False, KK: 0}) is None


# --- a disqualifying answer ends the form -----------------------------------------


async def test_student_ends_the_form_without_asking_the_rest(
    form_tracker, domain
) -> None:
    answered = {AGE: 21, CITIZEN: True}

    slots, messages = await validate(
        form_tracker, domain, EDUCATION, "iya masih kuliah", answered=answered
    )

    assert slots[EDUCATION] is True
    assert slots[REQUESTED] is None
    assert not {OCCUPATION, PRIOR, KK, AID} & set(slots)
    assert messages == []


@pytest.mark.parametrize("text", ["udah lulus", "sdh tamat sma", "udah ga kuliah"])
async def test_already_graduated_is_not_a_student(text, form_tracker, domain) -> None:
    # "udah" is a yes to "pernah ...?" but "udah lulus" answers "are you
    # studying?" with no.
    slots, messages = await validate(
        form_tracker, domain, EDUCATION, text, answered={AGE: 22, CITIZEN: True}
    )

    assert slots[EDUCATION] is False
    assert slots[REQUESTED] == OCCUPATION
    assert messages == []


async def test_non_citizen_ends_the_form(form_tracker, domain) -> None:
    slots, _ = await validate(
        form_tracker, domain, CITIZEN, "bukan, saya WNA", answered={AGE: 30}
    )

    assert slots[CITIZEN] is False
    assert slots[REQUESTED] is None


@pytest.mark.parametrize("text", ["16 tahun", "umur 17"])
async def test_under_age_ends_the_form_at_once(text, form_tracker, domain) -> None:
    slots, _ = await validate(form_tracker, domain, AGE, text)

    assert slots[REQUESTED] is None


@pytest.mark.parametrize(("version", "next_slot"), [("2020", CITIZEN), ("2023", None)])
async def test_age_cap_applies_only_from_2021(
    version, next_slot, form_tracker, domain, use_policy
) -> None:
    use_policy(version)

    slots, _ = await validate(form_tracker, domain, AGE, "65 tahun")

    assert slots[AGE] == 65
    assert slots[REQUESTED] == next_slot


# --- unclear answers, media and out-of-range numbers ----------------------------


async def test_two_unclear_answers_in_a_row_offer_a_person(
    form_tracker, domain
) -> None:
    slots, messages = await validate(form_tracker, domain, CITIZEN, "hmm entahlah")
    assert slots[CITIZEN] is None and slots["elig_unclear"] == 1
    assert "call center" not in messages[0]["text"].lower()

    slots, messages = await validate(
        form_tracker, domain, CITIZEN, "entah", answered={"elig_unclear": 1}
    )
    assert slots["elig_unclear"] == 2
    assert "call center" in messages[0]["text"].lower()  # open or closed


async def test_a_clear_answer_resets_the_unclear_count(form_tracker, domain) -> None:
    slots, _ = await validate(
        form_tracker, domain, CITIZEN, "iya", answered={"elig_unclear": 1}
    )
    assert slots[CITIZEN] is True and slots["elig_unclear"] == 0


@pytest.mark.parametrize(
    ("entity", "value"),
    [
        ("photo_url", "https://api.twilio.com/2010-04-01/Accounts/AC1/Media/ME1"),
        ("photo_file_id", "AgACAgUAAx15051990"),
        ("contact_phone", "+6281234500001"),
    ],
)
async def test_a_photo_or_contact_is_never_an_answer(
    entity, value, form_tracker, domain, fixed_today
) -> None:
    text = f'/inform{{"{entity}": "{value}"}}'
    slots, messages = await validate(
        form_tracker, domain, AGE, text, entities=[{"entity": entity, "value": value}]
    )
    assert slots == {AGE: None}
    assert "terima" in messages[0]["text"]


@pytest.mark.parametrize("value", [999, -1, 121])
async def test_out_of_range_ages_are_rejected(
    value, form_tracker, domain, fixed_today
) -> None:
    slots, _ = await validate(form_tracker, domain, AGE, str(value), value=value)
    assert slots[AGE] is None
