"""Inside Rasa: check the action server's answers with validators built once.

Rasa 3.6 checks every answer of the action server against its response schema
(`RemoteAction._validate_action_result`) with `jsonschema.validate`, which checks
the *schema itself* (`check_schema`, a large draft meta-schema) and builds a new
validator on every call: about 40 ms of CPU per action call on this machine,
half of Rasa's CPU per message (`python -m bench.e2e.answer_check`, and the
profile in docs/benchmarks.md "Whole path"). Rasa has no setting for it, so
`install` replaces that method with the same schema's check by validators built
(and their schemas checked) once.

The schema says each event is one of 23 kinds (`oneOf`), each kind naming its
event with a `const`: checked as written, every event of an answer is tried
against all 23, about 0.25 ms an event. An event that passes the schema's
common part (an object whose `event` is a string) can only match the kind whose
`const` is that string, so each event is checked against that kind alone: the
same verdict (`tests/unit/test_rasa_answer_check.py` compares both on generated
answers), about a tenth of the work. Whenever that check finds a fault, Rasa's
own check runs on the answer, so the error and message are Rasa's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from rasa.core.actions.action import RemoteAction

_RASA_CHECK = RemoteAction._validate_action_result


@lru_cache(maxsize=1)
def _validators() -> tuple[Any, Mapping[str, Any] | None]:
    """The answer's validator without the events' `oneOf`, and each event kind's
    validator by its `const`; (the whole schema's validator, None) if the schema
    is not shaped that way."""
    from jsonschema.validators import validator_for

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    try:
        split = copy.deepcopy(schema)
        kinds = split["properties"]["events"]["items"].pop("oneOf")
        by_name = {kind["properties"]["event"]["const"]: cls(kind) for kind in kinds}
    except (KeyError, TypeError, AttributeError):
        return cls(schema), None
    if len(by_name) != len(kinds):  # two kinds of one name: check as written
        return cls(schema), None
    return cls(split), by_name


def is_valid_answer(result: Any) -> bool:
    """Whether `result` is valid against Rasa's response schema."""
    answer, kinds = _validators()
    if not answer.is_valid(result):
        return False
    if kinds is None:
        return True
    events = result.get("events") or ()
    return all(_is_valid_event(event, kinds) for event in events)


def _is_valid_event(event: Mapping[str, Any], kinds: Mapping[str, Any]) -> bool:
    """Whether an event (its common part already valid) is valid as its kind."""
    kind = kinds.get(event["event"])
    return kind is not None and bool(kind.is_valid(event))


def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    """`RemoteAction._validate_action_result`, with the validators built once."""
    if is_valid_answer(result):
        return True
    return bool(_RASA_CHECK(self, result))  # raises Rasa's own error and message


def install() -> None:
    """Make Rasa's remote actions use the check built once (idempotent)."""
    RemoteAction._validate_action_result = validate_action_result
