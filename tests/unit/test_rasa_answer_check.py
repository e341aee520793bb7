"""Rasa's check of action server answers, with a validator built once
(`bot.rasa_answer_check`): the same verdicts and errors as Rasa's own, also
with each event checked against its own kind only."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from bot import rasa_answer_check
from bot.rasa_channel import GatewayInput

GOOD: list[dict[str, Any]] = [
    {},
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "requested_slot", "value": None}],
     "responses": [{"text": "halo", "buttons": []}]},
]  # fmt: skip
BAD: list[dict[str, Any]] = [
    {"events": "not a list"},
    {"responses": ["not an object"]},
    {"events": [{"event": "no_such_event"}]},
    {"events": [{"event": "slot", "value": 1}]},  # a slot event without its name
]


@pytest.fixture
def installed() -> Iterator[None]:
    original = RemoteAction._validate_action_result
    rasa_answer_check.install()
    yield
    RemoteAction._validate_action_result = original


def _verdict(result: dict[str, Any]) -> tuple[bool, str]:
    try:
        return RemoteAction("action_x", None)._validate_action_result(result), ""
    except ValidationError as exc:
        return False, exc.message


@pytest.mark.parametrize("result", GOOD + BAD)
def test_the_check_built_once_judges_as_rasas_own(
    result: dict[str, Any], installed: None
) -> None:
    ours = _verdict(result)
    RemoteAction._validate_action_result = rasa_answer_check._RASA_CHECK
    assert ours == _verdict(result)
    assert ours[0] == (result in GOOD)


def test_the_gateway_channel_installs_it(installed: None) -> None:
    RemoteAction._validate_action_result = rasa_answer_check._RASA_CHECK
    GatewayInput().blueprint(lambda message: None)  # type: ignore[arg-type,return-value]
    assert (
        RemoteAction._validate_action_result
        is rasa_answer_check.validate_action_result
    )


def _rasa_events() -> list[dict[str, Any]]:
    """One event of each kind our actions and Rasa's own send, as dictionaries."""
    from rasa.shared.core import events as e

    made = [
        e.UserUttered("halo", {"name": "greet", "confidence": 0.9}, []),
        e.BotUttered("Halo!", {"buttons": [{"title": "Ya", "payload": "/affirm"}]}),
        e.SlotSet("email", "budi@example.com"),
        e.SlotSet("requested_slot", None),
        e.ActionExecuted("action_listen", policy="RulePolicy", confidence=1.0),
        e.ActiveLoop("registration_form"),
        e.ActiveLoop(None),
        e.FollowupAction("action_registration_status"),
        e.Restarted(),
        e.AllSlotsReset(),
        e.SessionStarted(),
        e.ReminderCancelled(name="cek"),
        e.ConversationPaused(),
        e.ConversationResumed(),
        e.ActionExecutionRejected("registration_form"),
        e.LoopInterrupted(True),
        e.UserUtteranceReverted(),
        e.ActionReverted(),
        e.StoryExported(),
        e.AgentUttered("halo"),
        e.EntitiesAdded([{"entity": "email", "value": "a@b.c", "start": 0, "end": 5}]),
        e.DefinePrevUserUtteredFeaturization(False),
    ]
    return [event.as_dict() for event in made]


EVENTS = _rasa_events()
NAMES = sorted({event["event"] for event in EVENTS})
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
    st.text(max_size=4), st.just([]), st.just({}), st.just([{"x": 1}]),
)  # fmt: skip


@st.composite
def _events(draw: st.DrawFn) -> Any:
    """A real event, often bent: a field dropped, retyped, added or renamed."""
    event = copy.deepcopy(draw(st.sampled_from(EVENTS)))
    for _ in range(draw(st.integers(0, 2))):
        change = draw(st.sampled_from(["drop", "set", "rename", "whole"]))
        key = draw(st.sampled_from([*sorted(event), "extra"]))
        if change == "drop":
            event.pop(key, None)
        elif change == "set":
            event[key] = draw(ODD_VALUES)
        elif change == "rename":
            event["event"] = draw(st.sampled_from([*NAMES, "no_such_event", 7]))
        else:
            return draw(ODD_VALUES)
    return event


ANSWERS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "events": st.one_of(st.lists(_events(), max_size=4), ODD_VALUES),
            "responses": st.lists(st.one_of(st.just({"text": "halo"}), ODD_VALUES),
                                  max_size=2),
        },
    ),
    ODD_VALUES,
)  # fmt: skip


def test_every_event_kind_is_valid_as_made() -> None:
    from jsonschema.validators import validator_for

    schema = RemoteAction.action_response_format_spec()
    whole = validator_for(schema)(schema)
    assert whole.is_valid({"events": EVENTS})
    assert rasa_answer_check.is_valid_answer({"events": EVENTS})


@settings(max_examples=400, deadline=None)
@given(ANSWERS)
def test_each_event_checked_against_its_kind_judges_as_the_whole_schema(
    answer: Any,
) -> None:
    from jsonschema.validators import validator_for

    schema = RemoteAction.action_response_format_spec()
    whole = validator_for(schema)(schema)
    assert rasa_answer_check.is_valid_answer(answer) == whole.is_valid(answer)
