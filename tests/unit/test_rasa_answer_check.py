"""Rasa's check of action server answers, with a validator built once
(`bot.rasa_answer_check`): the same verdicts and errors as Rasa's own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
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
