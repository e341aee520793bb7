"""A form open when the session expired is open again in the next session
(`bot.rasa_session_resume`), with Rasa's own session start otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.core.actions.action import ActionSessionStart
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.rasa_session_resume import install, with_loop_resumed

DOMAIN = Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml"))
FORM = "registration_form"


@pytest.fixture(autouse=True, scope="module")
def _installed() -> None:
    install()


def tracker_mid_form() -> DialogueStateTracker:
    """Someone asked for the e-mail code, the registration form open."""
    return DialogueStateTracker.from_events(
        "someone",
        [
            ActionExecuted(ACTION_LISTEN_NAME),
            UserUttered("daftar", {"name": "start_registration"}),
            ActiveLoop(FORM),
            SlotSet("reg_consent", True),
            SlotSet("requested_slot", "reg_code"),
            ActionExecuted(FORM),
            ActionExecuted(ACTION_LISTEN_NAME),
        ],
        slots=DOMAIN.slots,
    )


async def session_start(tracker: DialogueStateTracker) -> list[Event]:
    return await ActionSessionStart().run(
        CollectingOutputChannel(),
        TemplatedNaturalLanguageGenerator(DOMAIN.responses),
        tracker,
        DOMAIN,
    )


async def test_the_form_open_at_the_end_of_a_session_is_open_in_the_next() -> None:
    events = await session_start(tracker_mid_form())

    assert isinstance(events[0], SessionStarted)
    assert events[-2:] == [ActiveLoop(FORM), ActionExecuted(ACTION_LISTEN_NAME)]
    resumed = DialogueStateTracker.from_events(
        "someone", [*tracker_mid_form().events, *events], slots=DOMAIN.slots
    )
    assert resumed.active_loop_name == FORM
    assert resumed.get_slot("requested_slot") == "reg_code"
    assert resumed.get_slot("reg_consent") is True


async def test_without_a_form_the_session_starts_as_rasa_starts_it() -> None:
    tracker = DialogueStateTracker.from_events(
        "someone",
        [
            ActionExecuted(ACTION_LISTEN_NAME),
            UserUttered("halo", {"name": "greet"}),
            SlotSet("reg_consent", True),
            ActionExecuted(ACTION_LISTEN_NAME),
        ],
        slots=DOMAIN.slots,
    )

    events = await session_start(tracker)

    assert events == [
        SessionStarted(),
        SlotSet("reg_consent", True),
        ActionExecuted(ACTION_LISTEN_NAME),
    ]
    assert not any(isinstance(event, ActiveLoop) for event in events)


async def test_a_new_conversation_starts_with_no_form() -> None:
    events = await session_start(DialogueStateTracker("someone", DOMAIN.slots))

    assert events == [SessionStarted(), ActionExecuted(ACTION_LISTEN_NAME)]


def test_a_session_start_without_its_closing_listen_is_left_as_it_is() -> None:
    events: list[Event] = [SessionStarted()]

    assert with_loop_resumed(events, FORM) == events
    assert with_loop_resumed([], FORM) == []
