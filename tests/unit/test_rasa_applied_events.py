"""A tracker's applied events folded on from the last call
(`bot.rasa_applied_events`) are Rasa's, event after event."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    DefinePrevUserUtteredFeaturization,
    Event,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot import rasa_applied_events as applied
from tests.conftest import ROOT
from tests.unit.test_rasa_states_replay import (
    _events,
    after_each_event,
    after_each_few_names_event,
)

RASAS = applied.RASA_APPLIED_EVENTS


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


def _more_events(domain: Domain, few: bool) -> st.SearchStrategy[Event]:
    """Rasa's events plus the two kinds only a form's look-back reads."""
    names = st.sampled_from(
        [domain.form_names[0], "action_listen", "utter_greet"] if few
        else [*domain.form_names, "action_listen", "utter_greet"]
    )  # fmt: skip
    return st.one_of(
        _events(domain, few),
        st.builds(ActionExecutionRejected, names),
        st.builds(DefinePrevUserUtteredFeaturization, st.booleans()),
    )


def _assert_as_rasa(tracker: DialogueStateTracker) -> None:
    ours = applied.applied_events(tracker)
    theirs = RASAS(tracker)
    assert len(ours) == len(theirs)
    assert all(a is b for a, b in zip(ours, theirs, strict=True))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data(), few=st.booleans())
def test_applied_events_are_rasas_after_every_event(
    domain: Domain, data: st.DataObject, few: bool
) -> None:
    events = data.draw(st.lists(_more_events(domain, few), min_size=1, max_size=40))
    for tracker in after_each_event(domain, data, events):
        if data.draw(st.booleans(), label="asked twice"):
            _assert_as_rasa(tracker)
        _assert_as_rasa(tracker)


def test_applied_events_are_rasas_in_many_conversations_of_few_names(
    domain: Domain,
) -> None:
    rng = random.Random(2027)
    for tracker in after_each_few_names_event(domain, rng, 400, 30):
        if rng.random() < 0.2:
            tracker.update(ActionExecutionRejected(domain.form_names[0]))
        _assert_as_rasa(tracker)


def test_only_new_events_are_folded(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    folded: list[int] = []
    rasas_fold = applied.fold

    def counting_fold(done: list[Event], events: list[Event], names: set[str]):  # type: ignore[no-untyped-def]
        events = list(events)
        folded.append(len(events))
        return rasas_fold(done, events, names)

    monkeypatch.setattr(applied, "fold", counting_fold)
    tracker = DialogueStateTracker.from_events(
        "fold", [ActionExecuted("action_listen")], domain.slots
    )
    applied.applied_events(tracker)
    applied.applied_events(tracker)
    tracker.update(UserUttered("t", {"name": "greet", "confidence": 1.0}))
    tracker.update(ActionExecuted("utter_greet"))
    applied.applied_events(tracker)
    assert folded == [1, 2]  # nothing new the second time, then only the two
    tracker.update(ActiveLoop(domain.form_names[0]))  # a form not seen before
    _assert_as_rasa(tracker)
    assert folded[2:] == [4]  # folded again from the start


def test_callers_get_their_own_list(domain: Domain) -> None:
    tracker = DialogueStateTracker.from_events(
        "own", [ActionExecuted("action_listen")], domain.slots
    )
    first = applied.applied_events(tracker)
    first.clear()
    assert len(applied.applied_events(tracker)) == 1
