"""Shared fixtures for offline tests of the custom actions.

The real ``domain.yml`` is loaded once per session as the plain dict the action
server receives. Trackers are built from events the way Rasa sends them, so
``Tracker.slots_to_validate``, ``latest_message`` and ``events`` behave as in
production. No action server, model or network is involved.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.services import Services, use_services
from bot.db import make_engine, make_sessionmaker
from bot.handoff.desk import HandoffDesk
from bot.handoff.hours import AgentHours
from bot.notify.queue import MailQueue
from bot.policy.programme import ENV_VAR, load_policy
from bot.privacy.vault import Vault
from bot.registration.desk import RegistrationDesk
from bot.schema import upgrade
from tests.fakes.mailer import FakeMailer

DOMAIN_PATH = Path(__file__).resolve().parents[2] / "domain.yml"
FORM = "eligibility_form"
# "Today" for every test that computes an age from a birth date.
FIXED_TODAY = date(2024, 6, 15)

# GSM 03.38 default alphabet and its extension table (what an SMS carries
# without switching to UCS-2).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "^{}\\[~]|€\f"
GSM7 = frozenset(GSM7_BASIC + GSM7_EXTENSION)

EventDict = dict[str, Any]
TrackerFactory = Callable[..., Tracker]


def non_gsm7(text: str) -> set[str]:
    """Characters of ``text`` an SMS cannot carry in GSM-7."""
    return {ch for ch in text if ch not in GSM7}


def user_event(
    text: str,
    intent: str,
    entities: Iterable[dict[str, Any]] = (),
    confidence: float = 0.9,
) -> EventDict:
    """A ``user`` event with parse data shaped like Rasa's NLU output (with
    the message's own id, as the processor adds it)."""
    ranking = [{"name": intent, "confidence": confidence}]
    return UserUttered(
        text,
        parse_data={
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "intent_ranking": ranking,
            "entities": list(entities),
            "message_id": uuid.uuid4().hex,
        },
    )


def action_event(name: str) -> EventDict:
    """An ``action`` executed event."""
    return ActionExecuted(name)


def bot_event(text: str) -> EventDict:
    """A ``bot`` utterance event."""
    return BotUttered(text)


def build_tracker(
    events: list[EventDict],
    active_loop: str | None = None,
    requested_slot: str | None = None,
) -> Tracker:
    """A tracker whose slots and latest message follow from ``events``."""
    slots: dict[str, Any] = {}
    latest_message: dict[str, Any] = {}
    latest_action: str | None = None
    for event in events:
        if event["event"] == "slot":
            slots[event["name"]] = event["value"]
        elif event["event"] == "user":
            latest_message = dict(event["parse_data"])
        elif event["event"] == "action":
            latest_action = event["name"]
    if requested_slot is not None:
        slots["requested_slot"] = requested_slot
    loop = {"name": active_loop, "validate": True, "rejected": False}
    return Tracker(
        sender_id=uuid.uuid4().hex,
        slots=slots,
        latest_message=latest_message,
        events=events,
        paused=False,
        followup_action=None,
        active_loop=loop if active_loop else {},
        latest_action_name=latest_action,
    )


@pytest.fixture(scope="session")
def domain() -> DomainDict:
    """The real domain, parsed once, as the action server receives it."""
    with DOMAIN_PATH.open(encoding="utf-8") as handle:
        loaded: DomainDict = yaml.safe_load(handle)
    return loaded


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    """A fresh dispatcher collecting the messages an action sends."""
    return CollectingDispatcher()


@pytest.fixture(autouse=True)
def default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts on the policy file's default version."""
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture
def use_policy(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Select a policy version for the rest of the test."""

    def select(version: str) -> None:
        monkeypatch.setenv(ENV_VAR, version)

    return select


@pytest.fixture
def fixed_today(monkeypatch: pytest.MonkeyPatch) -> date:
    """Freeze the actions' clock at :data:`FIXED_TODAY`."""
    monkeypatch.setattr("actions.eligibility.today_wib", lambda: FIXED_TODAY)
    return FIXED_TODAY


@pytest.fixture
def ev() -> SimpleNamespace:
    """Event builders for hand-written histories: ``ev.user``, ``ev.action``..."""
    return SimpleNamespace(
        user=user_event, action=action_event, bot=bot_event, slot=SlotSet
    )


@pytest.fixture
def tracker_from() -> Callable[..., Tracker]:
    """:func:`build_tracker`: a tracker from a hand-written event list."""
    return build_tracker


@pytest.fixture
def sms_safe() -> Callable[[str], None]:
    """Assert a message is non-empty plain GSM-7 text (no emoji, curly quotes)."""

    def check(text: str) -> None:
        assert text and text.strip(), "empty message"
        bad = non_gsm7(text)
        assert not bad, f"not GSM-7: {sorted(bad)!r} in {text!r}"

    return check


@pytest.fixture
def form_tracker() -> TrackerFactory:
    """Build the tracker the form validator sees after the user answered.

    ``answered`` holds already validated slots; the slot mapping put ``value``
    (by default the raw ``text``, as the ``from_text`` mappings do) into
    ``slot`` (by default ``requested_slot``). With ``requested_slot`` None the
    tracker is the one at form activation, the candidate prefilled from an
    entity of the triggering message.
    """

    def build(
        requested_slot: str | None,
        text: str,
        *,
        intent: str = "inform",
        answered: dict[str, Any] | None = None,
        value: Any = None,
        slot: str | None = None,
        entities: Iterable[dict[str, Any]] = (),
    ) -> Tracker:
        filled = slot or requested_slot
        assert filled is not None, "name the slot the mapping filled"
        candidate = SlotSet(filled, text if value is None else value)
        if requested_slot is None:
            history: list[EventDict] = [
                action_event("action_listen"),
                user_event(text, intent, entities),
                action_event("action_extract_slots"),
                candidate,
                action_event("utter_eligibility_start"),
                {"event": "active_loop", "name": FORM},
                candidate,
            ]
            return build_tracker(history, active_loop=FORM)
        history = [
            action_event("action_listen"),
            user_event("cek syarat", "check_eligibility"),
            action_event("utter_eligibility_start"),
            action_event(FORM),
            {"event": "active_loop", "name": FORM},
            *[SlotSet(name, v) for name, v in (answered or {}).items()],
            SlotSet("requested_slot", requested_slot),
            action_event("action_listen"),
            user_event(text, intent, entities),
            action_event("action_extract_slots"),
            candidate,
        ]
        return build_tracker(history, active_loop=FORM)

    return build


@pytest.fixture
def chat_tracker() -> TrackerFactory:
    """Build a tracker outside any form ending with the user's ``text``."""

    def build(text: str, intent: str, history: Iterable[EventDict] = ()) -> Tracker:
        events = [
            *history,
            action_event("action_listen"),
            user_event(text, intent),
        ]
        return build_tracker(events)

    return build


@pytest.fixture(scope="session")
def action_sessions(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Sessions on a migrated SQLite database shared by the action tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('actions')}/actions.db"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


@pytest.fixture(autouse=True)
def default_services(action_sessions: Any) -> Iterator[Services]:
    """Services over the test database (a tracker whose sender id is no gateway
    conversation is a caller outside the gateway); tests may install others."""
    mailer = FakeMailer()
    installed = Services(
        RegistrationDesk(action_sessions, b"k" * 32, load_policy),
        mailer,
        HandoffDesk(action_sessions, AgentHours()),
        Vault(action_sessions),
        mail=MailQueue(action_sessions, mailer),
    )
    use_services(installed)
    yield installed
    use_services(None)
