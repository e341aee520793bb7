"""Inside Rasa: check the action server's answers with a validator built once.

Rasa 3.6 checks every answer of the action server against its response schema
(`RemoteAction._validate_action_result`) with `jsonschema.validate`, which checks
the *schema itself* (`check_schema`, a large draft meta-schema) and builds a new
validator on every call: about 40 ms of CPU per action call on this machine,
half of Rasa's CPU per message (`python -m bench.e2e.answer_check`, and the
profile in docs/benchmarks.md "Whole path"). Rasa has no setting for it, so
`install` replaces that method with the same check by a validator built (and
its schema checked) once: the same schema, the same `best_match` error, the same
message added to it, in about 0.5 ms.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from rasa.core.actions.action import RemoteAction

_RASA_CHECK = RemoteAction._validate_action_result


@lru_cache(maxsize=1)
def _validator() -> Any:
    """Rasa's response schema's validator, its schema checked once."""
    from jsonschema.validators import validator_for

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    """`RemoteAction._validate_action_result`, with the validator built once."""
    from jsonschema import exceptions

    error = exceptions.best_match(_validator().iter_errors(result))
    if error is None:
        return True
    return bool(_RASA_CHECK(self, result))  # raises Rasa's own error and message


def install() -> None:
    """Make Rasa's remote actions use the check built once (idempotent)."""
    RemoteAction._validate_action_result = validate_action_result
