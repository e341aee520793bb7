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
loop variables, and a `Mark` where each action started. When the tracker's
applied events start with exactly those event objects, it folds only the new
ones. Applied events are not only appended: a form's next run takes the events
since its last run (the listen, the user's message) out of them, and undos take
out the last turn. Then the fold is rewound to the last mark before the first
event that differs: its tracker replayed again up to there (cheap: the states
are most of the cost), its states and variables as they were, and the rest is
folded anew. With no such mark (a restart, a session start, another tracker
under the same name) it replays from the start, as Rasa does. The last state
(the tracker after every event) is read on a copy of the fold. The steps are
Rasa's own (the loop body of `states_for_tracker_history` and
`generate_all_prior_trackers`), so the states are Rasa's:
`tests/unit/test_rasa_states_replay.py` compares them after every event of
random event sequences, with undos, loops, follow-ups and hidden rule turns.
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


@dataclass(frozen=True)
class Mark:
    """Where an action started in a fold: how many events and states came
    before it, and Rasa's two loop variables then."""

    events: int
    states: int
    last_ml_action: SubState | None
    turn_was_hidden: bool


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
    marks: list[Mark] = field(default_factory=list)

    def fold(
        self,
        events: list[Event],
        omit_unset_slots: bool,
        ignore_rule_only_turns: bool,
        rule_only_data: dict[str, Any] | None,
    ) -> None:
        """Rasa's `generate_all_prior_trackers` over more events, marking
        where each action starts."""
        for event in events:
            if isinstance(event, ActionExecuted):
                self.marks.append(
                    Mark(
                        len(self.events),
                        len(self.states),
                        self.last_ml_action,
                        self.turn_was_hidden,
                    )
                )
                self.visit(
                    self.tracker,
                    event.hide_rule_turn,
                    omit_unset_slots,
                    ignore_rule_only_turns,
                    rule_only_data,
                )
            self.tracker.update(event)
            self.events.append(event)

    def rewound(self, same: int, tracker: DialogueStateTracker) -> Fold:
        """The fold as it was before its first `same` events' last action
        (the tracker replayed again, the states and variables as they were),
        or a new fold when no action came before."""
        kept = [mark for mark in self.marks if mark.events <= same]
        fresh = Fold(self.domain, tracker.init_copy())
        if not kept:
            return fresh
        mark = kept[-1]
        for event in self.events[: mark.events]:
            fresh.tracker.update(event)
        fresh.events = self.events[: mark.events]
        fresh.states = self.states[: mark.states]
        fresh.last_ml_action = mark.last_ml_action
        fresh.turn_was_hidden = mark.turn_was_hidden
        fresh.marks = kept[:-1]  # the action at the mark is visited again
        return fresh

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


def latest(tracker: DialogueStateTracker) -> tuple[int, Event | None]:
    """How many events the tracker has, and its last one: while both stay the
    same, so do its events (Rasa only appends to them)."""
    events = tracker.events
    return len(events), (events[-1] if events else None)


def _same_start(seen: list[Event], events: list[Event]) -> int:
    """How many of the first events are the very same objects in both."""
    for index, (before, now) in enumerate(zip(seen, events, strict=False)):
        if before is not now:
            return index
    return min(len(seen), len(events))


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
    applied = tracker.applied_events()  # kept per tracker: bot.rasa_applied_events
    fold = _folds.get(key)
    if fold is None or fold.domain is not domain:
        fold = Fold(domain, tracker.init_copy())
    else:
        same = _same_start(fold.events, applied)
        if same < len(fold.events):
            fold = fold.rewound(same, tracker)
    _folds[key] = fold
    _folds.move_to_end(key)
    while len(_folds) > KEPT:
        _folds.popitem(last=False)
    arguments = (omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    try:
        fold.fold(applied[len(fold.events) :], *arguments)
    except BaseException:
        del _folds[key]  # half folded: the next call replays from the start
        raise
    replayed = fold.tracker
    last = Fold(
        domain,
        replayed,
        states=list(fold.states),
        last_ml_action=fold.last_ml_action,
        turn_was_hidden=fold.turn_was_hidden,
    )
    last.visit(replayed, False, *arguments)
    return last.states
