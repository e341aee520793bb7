"""A registration or eligibility form open when the session expired is open
again in the next session (`bot.rasa_session_resume`), within a day; Rasa's
own session start otherwise."""

from __future__ import annotations

import time
from collections.abc import Iterator
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
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot import rasa_session_resume
from bot.rasa_session_resume import RESUME_WITHIN, install, with_form_resumed

DOMAIN = Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml"))
REGISTRATION = "registration_form"
CONTINUE = DOMAIN.responses["utter_registration_continue"][0]["text"]


@pytest.fixture(autouse=True)
def _installed() -> Iterator[None]:
    """The patch for each test, Rasa's own session start again after it."""
    install()
    yield
    ActionSessionStart.run = rasa_session_resume._RASA_RUN  # type: ignore[method-assign]


def tracker_in(form: str, hours_ago: float = 2.0) -> DialogueStateTracker:
    """Someone in `form`, asked a question, whose last message was `hours_ago`."""
    said = UserUttered("daftar", {"name": "start_registration"})
    said.timestamp = time.time() - hours_ago * 3600
    return DialogueStateTracker.from_events(
        "someone",
        [
            ActionExecuted(ACTION_LISTEN_NAME),
            said,
            ActiveLoop(form),
            SlotSet("reg_consent", True),
            SlotSet("requested_slot", "reg_email_code"),
            ActionExecuted(form),
            ActionExecuted(ACTION_LISTEN_NAME),
        ],
        slots=DOMAIN.slots,
    )


async def session_start(
    tracker: DialogueStateTracker, domain: Domain = DOMAIN
) -> list[Event]:
    return await ActionSessionStart().run(
        CollectingOutputChannel(),
        TemplatedNaturalLanguageGenerator(domain.responses),
        tracker,
        domain,
    )


async def test_the_registration_open_at_the_end_of_a_session_goes_on() -> None:
    events = await session_start(tracker_in(REGISTRATION))

    assert isinstance(events[0], SessionStarted)
    assert events[-3] == ActiveLoop(REGISTRATION)
    assert isinstance(events[-2], BotUttered) and events[-2].text == CONTINUE
    assert events[-1] == ActionExecuted(ACTION_LISTEN_NAME)
    resumed = DialogueStateTracker.from_events(
        "someone", [*tracker_in(REGISTRATION).events, *events], slots=DOMAIN.slots
    )
    assert resumed.active_loop_name == REGISTRATION
    assert resumed.get_slot("requested_slot") == "reg_email_code"
    assert resumed.get_slot("reg_consent") is True


async def test_the_eligibility_check_goes_on_with_its_own_notice() -> None:
    events = await session_start(tracker_in("eligibility_form"))

    assert events[-3] == ActiveLoop("eligibility_form")
    notice = DOMAIN.responses["utter_form_continue"][0]["text"]
    assert isinstance(events[-2], BotUttered) and events[-2].text == notice


@pytest.mark.parametrize("form", ["link_form", "erasure_form"])
async def test_the_link_and_erasure_forms_are_not_opened_again(form: str) -> None:
    events = await session_start(tracker_in(form))

    assert not any(isinstance(event, ActiveLoop | BotUttered) for event in events)
    assert events[-1] == ActionExecuted(ACTION_LISTEN_NAME)


async def test_a_form_is_not_opened_again_after_a_day() -> None:
    events = await session_start(tracker_in(REGISTRATION, RESUME_WITHIN / 3600 + 1))

    assert not any(isinstance(event, ActiveLoop) for event in events)
    assert SlotSet("reg_consent", True) in events, "the answers are still kept"


async def test_a_form_the_model_no_longer_has_is_not_opened_again() -> None:
    without = Domain.from_dict(
        {**DOMAIN.as_dict(), "forms": {}, "actions": [], "responses": {}}
    )

    events = await session_start(tracker_in(REGISTRATION), without)

    assert not any(isinstance(event, ActiveLoop) for event in events)


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


async def test_a_new_conversation_starts_with_no_form() -> None:
    events = await session_start(DialogueStateTracker("someone", DOMAIN.slots))

    assert events == [SessionStarted(), ActionExecuted(ACTION_LISTEN_NAME)]


def test_a_session_start_without_its_closing_listen_is_left_as_it_is() -> None:
    events: list[Event] = [SessionStarted()]

    assert with_form_resumed(events, REGISTRATION, []) == events
    assert with_form_resumed([], REGISTRATION, []) == []
