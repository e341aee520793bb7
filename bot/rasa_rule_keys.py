"""Inside Rasa: RulePolicy's rules that cannot match left out before they are checked.

To find the rules that apply, RulePolicy (`_get_possible_keys`) checks every
rule it learned against the conversation's latest state, then the survivors
against the state before, and so on. The first step checks all of them (238
for this model), about two and a half thousand checks a message, and nearly
all fail on the rule's last action or intent. `install` first leaves out the
rules whose last state names an action (`prev_action.action_name`) or an intent
(`user.intent`) other than the conversation's: Rasa's own check
(`_does_rule_match_state`, reached because such a rule's last state has a
previous action) would refuse them for exactly that value. The rules are
indexed once by the action and intent they require (`RuleIndex`), so the
others are not even looked at (about 700 such looks a message before). Every
other rule is checked by Rasa's `_is_rule_applicable` as before, in the order
Rasa's set of keys iterates, into a set built the same way, so the rules found
(and the order a tie between equally long rules is broken in) are Rasa's:
`tests/unit/test_rasa_rule_keys.py` compares both on every prediction of the
trained model's conversations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.constants import PREVIOUS_ACTION, SHOULD_NOT_BE_SET, USER
from rasa.shared.core.domain import State
from rasa.shared.nlu.constants import ACTION_NAME, INTENT

_RASA_GET_POSSIBLE_KEYS = RulePolicy._get_possible_keys

Needs = tuple[str | None, str | None]
"""The action and the intent a rule's last state requires (None: none)."""


@dataclass(frozen=True)
class RuleIndex:
    """A lookup's rules as Rasa's first step meets them: in the order a set of
    its keys iterates (`order`), and, by what each requires of the latest
    state, their places in that order (`by_needs`; `unchecked`: rules Rasa may
    accept without looking)."""

    lookup: dict[str, str]
    order: list[str]
    by_needs: dict[Needs, list[int]]
    unchecked: list[int]


_indexes: dict[int, RuleIndex] = {}
"""Per lookup (by id, the lookup held so that its id is not reused)."""


def _required(sub_state: Any, key: str) -> str | None:
    value = sub_state.get(key) if isinstance(sub_state, dict) else None
    if isinstance(value, str) and value and value != SHOULD_NOT_BE_SET:
        return value
    return None


def rule_index(policy: RulePolicy, lookup: dict[str, str]) -> RuleIndex:
    """The lookup's rules indexed by what their last state requires, once."""
    kept = _indexes.get(id(lookup))
    if kept is not None and kept.lookup is lookup:
        return kept
    order = list(set(lookup.keys()))  # as Rasa's `set(lookup.keys())` iterates
    by_needs: dict[Needs, list[int]] = {}
    unchecked: list[int] = []
    for place, key in enumerate(order):
        last = policy._rule_key_to_state(key)[-1]
        if not last.get(PREVIOUS_ACTION):  # Rasa may accept it unchecked
            unchecked.append(place)
            continue
        needs = (
            _required(last.get(PREVIOUS_ACTION), ACTION_NAME),
            _required(last.get(USER), INTENT),
        )
        by_needs.setdefault(needs, []).append(place)
    _indexes[id(lookup)] = RuleIndex(lookup, order, by_needs, unchecked)
    return _indexes[id(lookup)]


def may_match(index: RuleIndex, latest: State) -> list[str]:
    """The rules whose last action and intent allow the latest state, in the
    order Rasa's first step meets them."""
    action = _required(latest.get(PREVIOUS_ACTION), ACTION_NAME)
    intent = _required(latest.get(USER), INTENT)
    places = list(index.unchecked)
    for wanted in {(a, i) for a in (None, action) for i in (None, intent)}:
        places += index.by_needs.get(wanted, ())
    return [index.order[place] for place in sorted(places)]


def get_possible_keys(
    self: RulePolicy, lookup: dict[str, str], states: list[State]
) -> set[str]:
    """Rasa's `RulePolicy._get_possible_keys`, meeting at the latest state only
    the rules whose last action and intent are the conversation's."""
    possible_keys = set(lookup.keys())
    for index, state in enumerate(reversed(states)):
        candidates = (
            may_match(rule_index(self, lookup), state) if index == 0 else possible_keys
        )
        possible_keys = {
            key for key in candidates if self._is_rule_applicable(key, index, state)
        }
    return possible_keys


def install() -> None:
    """Leave out the rules that cannot match before checking them (idempotent)."""
    RulePolicy._get_possible_keys = get_possible_keys
