"""A conversation's past states carried on from its last prediction
(`bot.rasa_states_replay`) are Rasa's, event after event."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    AllSlotsReset,
    Event,
    FollowupAction,
    LoopInterrupted,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.slots import BooleanSlot, CategoricalSlot, FloatSlot
from rasa.shared.core.trackers import DialogueStateTracker

from bot import rasa_states_replay as replay
from tests.conftest import ROOT

RASAS = DialogueStateTracker.past_states
ARGUMENTS = [  # (omit_unset_slots, ignore_rule_only_turns): both policies' and more
    (False, False),
    (False, True),
    (True, True),
    (True, False),
]


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


def _rule_only_data(domain: Domain) -> dict[str, Any]:
    return {"slots": [domain.slots[0].name], "active_loops": [domain.form_names[0]]}


def _slot_value(slot: Any) -> Any:
    if isinstance(slot, BooleanSlot):
        return True
    if isinstance(slot, FloatSlot):
        return 3.0
    if isinstance(slot, CategoricalSlot):
        return slot.values[0]
    return "x"


def _events(domain: Domain, few: bool = False) -> st.SearchStrategy[Event]:
    """Events of the domain's names; `few` draws from a handful of names, so
    that loops, follow-ups and hidden rule turns meet often."""
    actions = st.sampled_from(
        ["action_listen", domain.form_names[0], "utter_greet"] if few else
        ["action_listen", "action_extract_slots", *domain.form_names,
         *domain.user_actions[:8], *domain.responses][:40]
    )  # fmt: skip
    intents = st.sampled_from(domain.intents[: 2 if few else 20])
    entities = st.lists(st.sampled_from(domain.entities[:6]), max_size=2)
    slots = st.sampled_from(domain.slots)
    return st.one_of(
        st.builds(
            lambda name, hide: ActionExecuted(name, hide_rule_turn=hide),
            actions, st.booleans(),
        ),
        st.builds(
            lambda intent, found: UserUttered(
                "teks", {"name": intent, "confidence": 1.0},
                [{"entity": e, "value": "v", "start": 0, "end": 1} for e in found],
            ),
            intents, entities,
        ),
        st.builds(lambda slot: SlotSet(slot.name, _slot_value(slot)), slots),
        st.builds(lambda slot: SlotSet(slot.name, None), slots),
        st.builds(
            ActiveLoop,
            st.sampled_from([None, *domain.form_names[: 1 if few else None]]),
        ),
        st.builds(FollowupAction, actions),
        st.builds(LoopInterrupted, st.booleans()),
        st.sampled_from([UserUtteranceReverted, ActionReverted, Restarted,
                         SessionStarted, AllSlotsReset]).map(lambda kind: kind()),
    )  # fmt: skip


def after_each_event(
    domain: Domain, data: st.DataObject, events: list[Event]
) -> Iterator[DialogueStateTracker]:
    """A conversation's tracker after each of `events`, sometimes a copy of it
    (a new tracker with the same event objects, as Rasa makes before an
    action)."""
    tracker = DialogueStateTracker.from_events(
        "one", [ActionExecuted("action_listen")], domain.slots
    )
    for event in events:
        tracker.update(event)
        if data.draw(st.booleans(), label="a copy of the tracker"):
            tracker = tracker.copy()
        yield tracker


def _assert_as_rasa(tracker: DialogueStateTracker, domain: Domain) -> None:
    for omit, ignore in ARGUMENTS:
        for rule_only in (None, _rule_only_data(domain)):
            ours = replay.past_states(tracker, domain, omit, ignore, rule_only)
            assert ours == RASAS(tracker, domain, omit, ignore, rule_only)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data(), few=st.booleans())
def test_states_are_rasas_after_every_event(
    domain: Domain, data: st.DataObject, few: bool
) -> None:
    events = data.draw(st.lists(_events(domain, few), min_size=1, max_size=30))
    for tracker in after_each_event(domain, data, events):
        _assert_as_rasa(tracker, domain)


def _few_names_event(domain: Domain, rng: random.Random) -> Event:
    """An event of three actions, two intents, one loop and one slot, with
    undos and hidden rule turns often: where the fold is rewound."""
    form = domain.form_names[0]
    action = rng.choice(["action_listen", form, "utter_greet"])
    return rng.choice(
        [
            lambda: ActionExecuted(action, hide_rule_turn=rng.random() < 0.5),
            lambda: ActionExecuted(action, hide_rule_turn=True),
            lambda: ActionExecuted("action_listen"),
            lambda: UserUttered(
                "t", {"name": rng.choice(domain.intents[:2]), "confidence": 1.0}
            ),
            lambda: ActiveLoop(rng.choice([None, form])),
            lambda: FollowupAction(rng.choice([form, "utter_greet"])),
            lambda: SlotSet(domain.slots[0].name, "x"),
            UserUtteranceReverted,
            ActionReverted,
        ]
    )()


def after_each_few_names_event(
    domain: Domain, rng: random.Random, conversations: int, longest: int
) -> Iterator[DialogueStateTracker]:
    """Each of `conversations` conversations of 3 to `longest` - 1 events of
    few names (`_few_names_event`), its tracker after each event."""
    for number in range(conversations):
        tracker = DialogueStateTracker.from_events(
            f"few{number}", [ActionExecuted("action_listen")], domain.slots
        )
        for _ in range(rng.randrange(3, longest)):
            tracker.update(_few_names_event(domain, rng))
            yield tracker


def test_states_are_rasas_in_many_short_conversations_of_few_names(
    domain: Domain,
) -> None:
    for tracker in after_each_few_names_event(domain, random.Random(2026), 600, 14):
        _assert_as_rasa(tracker, domain)


def test_an_action_undone_rewinds_to_rasas_hidden_turn(domain: Domain) -> None:
    """Found by the test above: an action reverted after a loop's turn."""
    tracker = DialogueStateTracker.from_events(
        "undone", [ActionExecuted("action_listen")], domain.slots
    )
    for event in [
        SlotSet(domain.slots[0].name, "x"),
        ActionExecuted(domain.form_names[0]),
        ActionExecuted("action_listen"),
        ActionReverted(),
    ]:
        tracker.update(event)
        _assert_as_rasa(tracker, domain)


def test_another_tracker_under_the_same_name_replays_from_the_start(
    domain: Domain,
) -> None:
    def tracker(*intents: str) -> DialogueStateTracker:
        events: list[Event] = [ActionExecuted("action_listen")]
        for intent in intents:
            events += [
                UserUttered("t", {"name": intent, "confidence": 1.0}),
                ActionExecuted("utter_greet"),
                ActionExecuted("action_listen"),
            ]
        return DialogueStateTracker.from_events("same", events, domain.slots)

    first, second = tracker("greet", "greet"), tracker("goodbye")
    _assert_as_rasa(first, domain)
    _assert_as_rasa(second, domain)
    assert replay.past_states(first, domain) == RASAS(first, domain)


def test_only_new_events_are_folded(domain: Domain) -> None:
    tracker = DialogueStateTracker.from_events(
        "fold", [ActionExecuted("action_listen")], domain.slots
    )
    replay.past_states(tracker, domain)
    fold = next(f for key, f in replay._folds.items() if key[0] == "fold")
    tracker.update(UserUttered("t", {"name": "greet", "confidence": 1.0}))
    tracker.update(ActionExecuted("utter_greet"))
    replay.past_states(tracker, domain)
    again = next(f for key, f in replay._folds.items() if key[0] == "fold")
    assert again is fold and fold.events == tracker.applied_events()
    tracker.update(UserUtteranceReverted())  # not a continuation: a new fold
    assert replay.past_states(tracker, domain) == RASAS(tracker, domain)
    assert next(f for key, f in replay._folds.items() if key[0] == "fold") is not fold


def test_the_folds_kept_are_bounded(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay, "KEPT", 3)
    for number in range(6):
        tracker = DialogueStateTracker.from_events(
            f"bound{number}", [ActionExecuted("action_listen")], domain.slots
        )
        replay.past_states(tracker, domain)
    assert len(replay._folds) <= 3
