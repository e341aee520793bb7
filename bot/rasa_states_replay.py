"""Inside Rasa: a conversation's past states carried on from its last prediction.

Before each prediction the policies turn the tracker into its past states:
Rasa (`Domain.states_for_tracker_history`) replays every applied event of the
session into a new tracker and reads a state before each action, so the work
grows with the session (about half a millisecond for fifty events, done by
MemoizationPolicy and by RulePolicy, for each of a message's two or three
predictions). That replay is a fold over the applied events: what it has made
after the first *n* events depends on those events, the domain and the
arguments only. The tracker store hands out the tracker of the turn before
(`bot.rasa_tracker_store`), and Rasa's tracker copies share its event objects,
so a conversation's next prediction usually sees the same event objects again
with a few new ones after them.

`past_states` keeps, per conversation and arguments, the fold after the
events it has seen (`Fold`): the replayed tracker, the states and Rasa's two
loop variables. When the tracker's applied events start with exactly those
event objects, it folds only the new ones; otherwise (an undo, a restart, a
session start, another tracker under the same name) it replays from the start,
as Rasa does. The last state (the tracker after every event) is read on a copy
of the fold. The steps are Rasa's own (the loop body of
`states_for_tracker_history` and `generate_all_prior_trackers`), so the states
are Rasa's: `tests/unit/test_rasa_states_replay.py` compares them after every
event of the trained model's conversations and across undos and restarts.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, cast

from rasa.shared.core.constants import PREVIOUS_ACTION
from rasa.shared.core.domain import Domain, State, SubState
from rasa.shared.core.events import ActionExecuted, Event
from rasa.shared.core.trackers import DialogueStateTracker

KEPT = 2048
"""Folds kept (two per conversation: MemoizationPolicy's arguments and
RulePolicy's, about 40 KiB together for a session of fifty events, so about
40 MiB at most; the tracker store keeps 1,000 trackers), the least recently
used dropped first: a dropped one costs a replay from the start."""


@dataclass
class Fold:
    """Rasa's replay after some applied events: the replayed tracker, the
    states so far and the loop's two variables."""

    domain: Domain
    tracker: DialogueStateTracker
    events: list[Event] = field(default_factory=list)
    states: list[State] = field(default_factory=list)
    last_ml_action: SubState | None = None
    turn_was_hidden: bool = False

    def visit(
        self,
        prior: DialogueStateTracker,
        hide_rule_turn: bool,
        omit_unset_slots: bool,
        ignore_rule_only_turns: bool,
        rule_only_data: dict[str, Any] | None,
    ) -> None:
        """The body of Rasa's loop in `states_for_tracker_history` for one
        prior tracker."""
        domain = self.domain
        if ignore_rule_only_turns:
            if not self.turn_was_hidden:
                self.last_ml_action = domain._get_prev_action_sub_state(prior)
            if (
                not prior.followup_action
                and prior.latest_action_name != prior.active_loop_name
            ):
                self.turn_was_hidden = hide_rule_turn
            if self.turn_was_hidden:
                return
        state = domain.get_active_state(prior, omit_unset_slots=omit_unset_slots)
        if ignore_rule_only_turns:
            domain._remove_rule_only_features(state, rule_only_data)
            if self.states:
                domain._substitute_rule_only_user_input(state, self.states[-1])
            if self.last_ml_action:
                state[PREVIOUS_ACTION] = cast(SubState, self.last_ml_action)
        self.states.append(domain._clean_state(state))


_folds: OrderedDict[tuple[Any, ...], Fold] = OrderedDict()


def frozen(data: dict[str, Any] | None) -> Any:
    """`rule_only_data` (names of slots and loops in lists) as a key."""
    if data is None:
        return None
    return tuple(sorted((key, tuple(value)) for key, value in data.items()))


def _starts_with(events: list[Event], prefix: list[Event]) -> bool:
    return len(events) >= len(prefix) and all(
        seen is event for seen, event in zip(prefix, events, strict=False)
    )


def past_states(
    tracker: DialogueStateTracker,
    domain: Domain,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: dict[str, Any] | None = None,
) -> list[State]:
    """Rasa's `tracker.past_states(...)`, folding only the events that are new
    since this conversation's last call with these arguments. The list is the
    caller's, but all states except the last are the fold's own: a caller that
    changes them must copy them first (`bot.rasa_past_states` does)."""
    key = (
        tracker.sender_id,
        tracker.is_rule_tracker,
        tracker._max_event_history,
        id(domain),
        omit_unset_slots,
        ignore_rule_only_turns,
        frozen(rule_only_data),
    )
    applied = tracker.applied_events()
    fold = _folds.get(key)
    if (
        fold is None
        or fold.domain is not domain
        or not _starts_with(applied, fold.events)
    ):
        fold = Fold(domain, tracker.init_copy())
    _folds[key] = fold
    _folds.move_to_end(key)
    while len(_folds) > KEPT:
        _folds.popitem(last=False)
    arguments = (omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    replayed = fold.tracker
    try:
        for event in applied[len(fold.events) :]:
            if isinstance(event, ActionExecuted):
                fold.visit(replayed, event.hide_rule_turn, *arguments)
            replayed.update(event)
            fold.events.append(event)
    except BaseException:
        del _folds[key]  # half folded: the next call replays from the start
        raise
    last = Fold(
        domain,
        replayed,
        states=list(fold.states),
        last_ml_action=fold.last_ml_action,
        turn_was_hidden=fold.turn_was_hidden,
    )
    last.visit(replayed, False, *arguments)
    return last.states
