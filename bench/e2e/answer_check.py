"""`python -m bench.e2e.answer_check`: the CPU cost of Rasa's check of one action
server answer (`RemoteAction._validate_action_result`, which calls
`jsonschema.validate`) against the same check by a validator built once, by
`bot.rasa_answer_check` (each event checked against its own kind), and of
`check_schema` alone (what `jsonschema.validate` repeats on every call)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CALLS = 50
ANSWER = {
    "events": [{"event": "slot", "name": "requested_slot", "value": None}],
    "responses": [
        {"text": "Kartu Prakerja adalah program pengembangan kompetensi kerja.",
         "buttons": [], "elements": [], "custom": {}, "template": None,
         "response": None, "image": None, "attachment": None}
    ],
}  # fmt: skip


def per_call_ms(call: Callable[[], Any]) -> float:
    """Thread CPU ms per call, after three warm-up calls."""
    for _ in range(3):
        call()
    started = time.thread_time()
    for _ in range(CALLS):
        call()
    return (time.thread_time() - started) * 1000 / CALLS


def main() -> None:
    """Print the four costs."""
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    from bot.rasa_answer_check import is_valid_answer

    action = RemoteAction("validate_eligibility_form", None)
    schema = action.action_response_format_spec()
    cls = validator_for(schema)
    built_once = cls(schema)
    print(
        f"Rasa's check (jsonschema.validate): "
        f"{per_call_ms(lambda: action._validate_action_result(ANSWER)):.2f} ms"
    )
    once = per_call_ms(lambda: built_once.validate(ANSWER))
    print(f"a validator built once: {once:.3f} ms")
    kinds = per_call_ms(lambda: is_valid_answer(ANSWER))
    print(f"each event checked against its kind (ours): {kinds:.3f} ms")
    print(f"check_schema alone: {per_call_ms(lambda: cls.check_schema(schema)):.2f} ms")


if __name__ == "__main__":
    main()
