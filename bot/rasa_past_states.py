"""Inside Rasa: a tracker's past states built once while its events stay the same.

To predict, each policy turns the tracker into its past states
(`DialogueStateTracker.past_states`): Rasa replays the session's events into a
new tracker and reads a state at every action, about half a millisecond for a
session of fifty events. After every message RulePolicy does it twice with the
same arguments (once matching the text, once the intent), on the same tracker.
`install` keeps the last few results (`KEPT`), each under its tracker, the
tracker's events (how many, and the last one), the domain and the arguments,
and hands out a copy: the states are a function of these alone (the replay
starts from the domain's slots, not the tracker's). A prediction runs without
a pause in Rasa's event loop, so RulePolicy's two calls come one after the
other; the entries hold their tracker, last event and domain so that no id is
reused while they are kept. A copy of the two levels that callers change
(Rasa's featurizer rewrites the last state's user part in place) is 0.016 ms
for 34 states; the values under them are strings and tuples. A result not
kept is built by `bot.rasa_states_replay`, which folds only the events that are
new since the conversation's last prediction.

The same holds for the states' debug text: RulePolicy formats every state for a
debug log line each time it looks for a rule, whatever the log level. It is
made only when that logger is on for debug.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from rasa.core.policies.policy import Policy
from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.trackers import DialogueStateTracker

from bot.rasa_states_replay import frozen, latest
from bot.rasa_states_replay import past_states as replay_past_states

_RASA_PAST_STATES = DialogueStateTracker.past_states
_RASA_FORMAT = Policy.__dict__["format_tracker_states"]
KEPT = 4
"""Results kept (a prediction asks for two, one per policy's arguments)."""
_kept: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], list[State]]] = OrderedDict()
_RULES_LOG = logging.getLogger("rasa.core.policies.rule_policy")


def _copy(states: list[State]) -> list[State]:
    return [{part: dict(values) for part, values in state.items()} for state in states]


def past_states(
    self: DialogueStateTracker,
    domain: Domain,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: dict[str, Any] | None = None,
) -> list[State]:
    """`DialogueStateTracker.past_states`, built once per events and arguments."""
    count, last = latest(self)
    key = (
        id(self),
        count,
        id(last),
        id(domain),
        omit_unset_slots,
        ignore_rule_only_turns,
        frozen(rule_only_data),
    )
    kept = _kept.get(key)
    if kept is not None:
        _kept.move_to_end(key)
        return _copy(kept[1])
    states = replay_past_states(
        self,
        domain,
        omit_unset_slots=omit_unset_slots,
        ignore_rule_only_turns=ignore_rule_only_turns,
        rule_only_data=rule_only_data,
    )
    _kept[key] = ((self, last, domain), states)  # held: their ids stay theirs
    if len(_kept) > KEPT:
        _kept.popitem(last=False)
    return _copy(states)


def format_tracker_states(states: list[dict[str, Any]]) -> str:
    """`Policy.format_tracker_states` when RulePolicy's debug log is on, else ""
    (its only use is that log line)."""
    if _RULES_LOG.isEnabledFor(logging.DEBUG):
        return str(_RASA_FORMAT.__func__(states))
    return ""


def install() -> None:
    """Build past states once per events and format them only for a debug log
    (idempotent)."""
    DialogueStateTracker.past_states = past_states
    RulePolicy.format_tracker_states = staticmethod(format_tracker_states)
