"""Inside Rasa: a tracker's applied events, folded on from where they were.

`DialogueStateTracker.applied_events` (the session's events without the ones
undone: restarts, reverts, a form's repeated runs) walks every event of the
tracker each time it is asked, and Rasa asks often: twice when a message
arrives (`_update_tracker_session`: "are there any?", then the last user
message), and again for each prediction's past states. Each step tries the
event against up to eight of Rasa's event classes with `isinstance`, which for
Rasa's events (an `ABC`) goes through `ABCMeta.__instancecheck__`; a form's
run also looks back over the events applied so far. In the whole path that
was 6.8 % of Rasa's CPU (py-spy, SQLite, 50 people in flight).

The walk is a left fold: what it has made after the first *n* events depends
on those events and on the names of the forms activated anywhere in the
tracker's events (`loop_names`) only. `applied_events` keeps, on the tracker,
how many events it folded, the last of them, those loop names and the result.
Rasa only appends to a tracker's events (a history without a length limit,
the default), so when the tracker still has that
event at that place and its new events activate no form it had not seen, it
folds only the new events; otherwise it folds them all, as Rasa does. Each
event's class is sorted once (`_kind`, with `issubclass`, so subclasses and
registered classes count as Rasa's `isinstance` counts them) and the steps are
Rasa's own, on the same lists. Callers get a new list each time, as from Rasa.
`tests/unit/test_rasa_applied_events.py` compares the result with Rasa's after
every event of random event sequences, copies and long sessions included.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    DefinePrevUserUtteredFeaturization,
    Event,
    Restarted,
    SessionStarted,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

RASA_APPLIED_EVENTS = DialogueStateTracker.applied_events
"""Rasa's own, for comparison."""
KEPT = "_prakerja_applied_events"
"""The tracker's attribute holding the last fold: (events folded, the last of
them, loop names, applied events)."""

RESTART = 1
ACTION_REVERTED = 2
UTTERANCE_REVERTED = 4
ACTION = 8
LOOP = 16
USER = 32
REJECTED = 64
PREVIOUS_FEATURIZATION = 128


_KINDS: dict[type, int] = {}
"""Each event class met, sorted (`_sort`)."""


def _kind(event: Any) -> int:
    """Which of Rasa's event classes `event` is an instance of (bits)."""
    kind = _KINDS.get(type(event))
    if kind is None:
        kind = _KINDS[type(event)] = _sort(type(event))
    return kind


def _sort(event_type: type) -> int:
    """Which of Rasa's event classes the events of `event_type` are (bits)."""
    kinds = (
        ((Restarted, SessionStarted), RESTART),
        (ActionReverted, ACTION_REVERTED),
        (UserUtteranceReverted, UTTERANCE_REVERTED),
        (ActionExecuted, ACTION),
        (ActiveLoop, LOOP),
        (UserUttered, USER),
        (ActionExecutionRejected, REJECTED),
        (DefinePrevUserUtteredFeaturization, PREVIOUS_FEATURIZATION),
    )
    bits = 0
    for classes, bit in kinds:
        if issubclass(event_type, classes):
            bits |= bit
    return bits


def _loop_names(events: Any) -> set[str]:
    """The names of the forms the events activate (Rasa's `loop_names`)."""
    return {event.name for event in events if _kind(event) & LOOP and event.name}


def _undo_till_previous(kind: int, done: list[Event]) -> None:
    """Rasa's `_undo_till_previous`: drop events up to and including the last
    one of `kind`."""
    while done:
        event = done.pop()
        if _kind(event) & kind:
            break


def _first_run_or_unhappy_path(loop_name: str, done: list[Event]) -> bool:
    """Rasa's `_first_loop_execution_or_unhappy_path`."""
    next_action: str | None = None
    for event in reversed(done):
        kind = _kind(event)
        if kind & LOOP and event.name is None:
            return True
        if kind & REJECTED and event.action_name == loop_name:
            return True
        if kind & USER and next_action is not None and next_action != loop_name:
            return True
        if kind & ACTION:
            if event.action_name == loop_name:
                return False
            next_action = event.action_name
    return True


def _undo_till_previous_run(loop_name: str, done: list[Event]) -> None:
    """Rasa's `_undo_till_previous_loop_execution`: drop the actions and user
    messages after the form's last run, keeping the other events."""
    offset = 0
    for event in reversed(done[:]):
        kind = _kind(event)
        if kind & ACTION and event.action_name == loop_name:
            break
        if kind & (ACTION | USER | PREVIOUS_FEATURIZATION):
            del done[-1 - offset]
        else:
            offset += 1


def fold(done: list[Event], events: Any, loop_names: set[str]) -> list[Event]:
    """Rasa's `applied_events` loop over `events`, starting from `done` (which
    it changes); the applied events."""
    for event in events:
        kind = _kind(event)
        if kind & RESTART:
            done = []
        elif kind & ACTION_REVERTED:
            _undo_till_previous(ACTION, done)
        elif kind & UTTERANCE_REVERTED:
            _undo_till_previous(USER, done)
            _undo_till_previous(ACTION, done)
        elif (
            kind & ACTION
            and event.action_name in loop_names
            and not _first_run_or_unhappy_path(event.action_name, done)
        ):
            _undo_till_previous_run(event.action_name, done)
        else:
            done.append(event)
    return done


def applied_events(self: DialogueStateTracker) -> list[Event]:
    """`DialogueStateTracker.applied_events`, folded on from the last call."""
    events = self.events
    count = len(events)
    kept = getattr(self, KEPT, None)
    if kept is not None and getattr(events, "maxlen", None) is None:
        folded, last, loop_names, done = kept
        if 0 < folded <= count and events[folded - 1] is last:
            new = list(islice(events, folded, None))
            if _loop_names(new) <= loop_names:
                if new:
                    done = fold(list(done), new, loop_names)
                    setattr(self, KEPT, (count, events[-1], loop_names, done))
                return list(done)
    loop_names = _loop_names(events)
    done = fold([], events, loop_names)
    if count:
        setattr(self, KEPT, (count, events[-1], loop_names, done))
    return list(done)


def install() -> None:
    """Fold a tracker's applied events on from the last call (idempotent)."""
    DialogueStateTracker.applied_events = applied_events
