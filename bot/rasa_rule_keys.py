"""Inside Rasa: RulePolicy's rules that cannot match left out before they are checked.

To find the rules that apply, RulePolicy (`_get_possible_keys`) checks every
rule it learned against the conversation's latest state, then the survivors
against the state before, and so on. The first step checks all of them (238
for this model), about two and a half thousand checks a message, and nearly
all fail on the rule's last action or intent. `install` first leaves out the
rules whose last state names an action (`prev_action.action_name`) or an intent
(`user.intent`) other than the conversation's: Rasa's own check
(`_does_rule_match_state`, reached because such a rule's last state has a
previous action) would refuse them for exactly that value. Every other rule
is checked by Rasa's `_is_rule_applicable` as before, in the same order, into
a set built the same way, so the rules found (and the order a tie between
equally long rules is broken in) are Rasa's:
`tests/unit/test_rasa_rule_keys.py` compares both on every prediction of the
trained model's conversations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.constants import PREVIOUS_ACTION, SHOULD_NOT_BE_SET, USER
from rasa.shared.core.domain import State
from rasa.shared.nlu.constants import ACTION_NAME, INTENT

_RASA_GET_POSSIBLE_KEYS = RulePolicy._get_possible_keys

Needs = tuple[str | None, str | None]
"""The action and the intent a rule's last state requires (None: none)."""

_needs: dict[int, tuple[dict[str, str], dict[str, Needs]]] = {}
"""Per lookup (by id, the lookup held so that its id is not reused): what each
of its rules requires of the conversation's latest state."""


def _required(sub_state: Any, key: str) -> str | None:
    value = sub_state.get(key) if isinstance(sub_state, dict) else None
    if isinstance(value, str) and value and value != SHOULD_NOT_BE_SET:
        return value
    return None


def rule_needs(policy: RulePolicy, lookup: dict[str, str]) -> dict[str, Needs]:
    """What each rule of `lookup` requires of the latest state, found once."""
    kept = _needs.get(id(lookup))
    if kept is not None and kept[0] is lookup:
        return kept[1]
    needs: dict[str, Needs] = {}
    for key in lookup:
        last = policy._rule_key_to_state(key)[-1]
        if last.get(PREVIOUS_ACTION):  # else Rasa may accept it unchecked
            needs[key] = (
                _required(last.get(PREVIOUS_ACTION), ACTION_NAME),
                _required(last.get(USER), INTENT),
            )
    _needs[id(lookup)] = (lookup, needs)
    return needs


def _may_match(needs: dict[str, Needs], latest: State) -> Callable[[str], bool]:
    """Whether a rule's last action and intent allow the latest state."""
    action = _required(latest.get(PREVIOUS_ACTION), ACTION_NAME)
    intent = _required(latest.get(USER), INTENT)

    def may_match(key: str) -> bool:
        wanted_action, wanted_intent = needs.get(key, (None, None))
        return (wanted_action is None or wanted_action == action) and (
            wanted_intent is None or wanted_intent == intent
        )

    return may_match


def get_possible_keys(
    self: RulePolicy, lookup: dict[str, str], states: list[State]
) -> set[str]:
    """Rasa's `RulePolicy._get_possible_keys`, leaving out at the latest state
    the rules whose last action or intent is not the conversation's."""
    possible_keys = set(lookup.keys())
    for index, state in enumerate(reversed(states)):
        may_match = _may_match(rule_needs(self, lookup), state) if index == 0 else None
        possible_keys = {
            key
            for key in possible_keys
            if (may_match is None or may_match(key))
            and self._is_rule_applicable(key, index, state)
        }
    return possible_keys


def install() -> None:
    """Leave out the rules that cannot match before checking them (idempotent)."""
    RulePolicy._get_possible_keys = get_possible_keys
