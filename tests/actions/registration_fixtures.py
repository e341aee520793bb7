"""Helpers for the registration action tests: a real desk, a fake mailer, trackers.

The desk runs over a migrated SQLite database (gateway and registry tables, as in
production), so the actions find their caller from a `conversation` row: every
tracker's sender id is the pseudonym of such a row. Mail is recorded, not sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from bot.messages.models import Conversation
from bot.messages.pseudonym import pseudonym
from bot.registration.desk import Caller, Details, RegistrationDesk
from bot.registry import ensure_batch, set_step
from bot.registry.models import STEP_DONE, STEP_FAILED, STEP_NIK
from tests.actions.conftest import EventDict, action_event, build_tracker, user_event
from tests.fakes.mailer import FakeMailer, SentMail  # noqa: F401 (re-exported)

PSEUDONYM_KEY = "actions-test-pseudonym-key"
CODE_SECRET = b"actions-test-code-secret-0123456789"
START = datetime(2026, 11, 20, 3, 0)  # naive UTC, 10.00 WIB
FORM = "registration_form"
LINK_FORM = "link_form"
PHONE = "+6281234567890"
STRANGER_PHONE = "+6281298765432"
CHAT = "4242"
EMAIL = "siti.rahayu@gmail.com"
NAME = "SITI RAHAYU"
NIK = "3174011508900001"  # born 15-08-1990
KK = "3174010101200001"
BORN = "1990-08-15"
_CODE = re.compile(r"\b(\d{6})\b")


class FakeClock:
    """Naive-UTC time that moves only when a test says so."""

    def __init__(self, now: datetime) -> None:
        """Start at `now`."""
        self.now = now

    def __call__(self) -> datetime:
        """The current (frozen) time."""
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(**delta)


@dataclass
class Registry:
    """The desk the actions use, its database, mailer and clock."""

    sessions: sessionmaker
    desk: RegistrationDesk
    mailer: FakeMailer
    clock: FakeClock

    def conversation(self, channel: str, address: str) -> str:
        """Store a gateway conversation; its pseudonym (Rasa's sender id)."""
        alias = pseudonym(PSEUDONYM_KEY, channel, address)
        with self.sessions() as session, session.begin():
            session.add(
                Conversation(
                    channel=channel, address=address, pseudonym=alias, state={}
                )
            )
        return alias

    def caller(self, alias: str) -> Caller:
        """The desk's caller for a pseudonym."""
        found = self.desk.caller(alias)
        assert found is not None
        return found

    def count(self, model: type) -> int:
        """Rows in the table of `model`."""
        with self.sessions() as session:
            return int(
                session.execute(select(func.count()).select_from(model)).scalar_one()
            )

    def register(self, alias: str, nik: str = NIK) -> int:
        """Register the conversation's caller through the desk; the applicant id."""
        caller = self.caller(alias)
        self.desk.give_consent(caller)
        request = self.desk.request_email_code(caller, EMAIL)
        assert request.code is not None
        assert self.desk.check_email_code(caller, request.code).ok
        submission = self.desk.submit(
            caller,
            Details(
                full_name=NAME,
                email=EMAIL,
                nik=nik,
                kk_number=KK,
                birth_date=datetime.fromisoformat(BORN).date(),
            ),
        )
        assert submission.applicant_id is not None, submission.outcome
        return submission.applicant_id

    def nik_checked(self, applicant_id: int, reason: str | None = None) -> None:
        """Set the NIK step as a finished check would: done, or failed."""
        status = STEP_FAILED if reason else STEP_DONE
        with self.sessions() as session, session.begin():
            set_step(session, applicant_id, STEP_NIK, status, reason=reason)

    def open_batch(self, number: int = 5) -> None:
        """A batch open from a day ago for ten days."""
        with self.sessions() as session, session.begin():
            ensure_batch(
                session,
                number,
                START - timedelta(days=1),
                START + timedelta(days=10),
                100,
            )


def texts(dispatcher: CollectingDispatcher) -> list[str]:
    """The texts an action sent."""
    return [message.get("text") or "" for message in dispatcher.messages]


def slots_of(events: Iterable[EventDict]) -> dict[str, Any]:
    """The slot values the events set (the last one wins)."""
    return {
        event["name"]: event["value"] for event in events if event["event"] == "slot"
    }


def form_tracker(
    sender_id: str,
    requested_slot: str,
    text: str,
    *,
    answered: dict[str, Any] | None = None,
    intent: str = "inform",
    form: str = FORM,
    earlier: Iterable[EventDict] = (),
    metadata: dict[str, Any] | None = None,
) -> Tracker:
    """The tracker the form validator sees after `text` answered `requested_slot`
    (mapped from the text, as the `from_text` mappings do); `earlier` events come
    after the `answered` slots; `metadata` is the message's (the gateway's)."""
    message = user_event(text, intent)
    if metadata is not None:
        message["metadata"] = metadata
        message["parse_data"]["metadata"] = metadata
    opening = user_event("daftar", "start_registration")
    history: list[EventDict] = [
        action_event("action_listen"),
        opening,
        action_event(form),
        {"event": "active_loop", "name": form},
        *[SlotSet(name, value) for name, value in (answered or {}).items()],
        *earlier,
        SlotSet("requested_slot", requested_slot),
        action_event("action_listen"),
        message,
        action_event("action_extract_slots"),
        SlotSet(requested_slot, text),
    ]
    tracker = build_tracker(history, active_loop=form)
    tracker.active_loop["trigger_message"] = dict(opening["parse_data"])
    tracker.sender_id = sender_id
    return tracker


def opening_tracker(
    sender_id: str,
    *,
    slots: dict[str, Any] | None = None,
    asked_before: str | None = None,
    form: str = FORM,
    text: str = "daftar",
    intent: str = "start_registration",
) -> Tracker:
    """The tracker a form's validator gets when Rasa opens the form on `text`
    (Rasa 3.6 `FormAction._activate_loop` and `_temporary_tracker`): the loop
    already open, triggered by this message; `requested_slot` as it was
    (`asked_before`: a question of an earlier form or session); after the
    form's own action, the answers kept from before (`slots`) handed over again
    as answers to validate."""
    kept = [SlotSet(name, value) for name, value in (slots or {}).items()]
    message = user_event(text, intent)
    message["parse_data"]["message_id"] = f"m-{intent}"
    history: list[EventDict] = [
        *kept,
        SlotSet("requested_slot", asked_before),
        action_event("action_listen"),
        message,
        {"event": "active_loop", "name": form},
        SlotSet("requested_slot", asked_before),
        action_event(form),
        *kept,
    ]
    tracker = build_tracker(history, active_loop=form)
    tracker.active_loop["trigger_message"] = dict(message["parse_data"])
    tracker.sender_id = sender_id
    return tracker


async def open_form_with(
    validator: FormValidationAction,
    sender_id: str,
    domain: DomainDict,
    **opening: Any,
) -> tuple[list[EventDict], CollectingDispatcher]:
    """The validator's call when Rasa opens its form (`opening_tracker` with
    `opening`): (events, what was said)."""
    dispatcher = CollectingDispatcher()
    tracker = opening_tracker(sender_id, **opening)
    return await validator.run(dispatcher, tracker, domain), dispatcher


def chat_tracker(
    sender_id: str,
    text: str,
    intent: str,
    *,
    slots: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    entities: Iterable[dict[str, Any]] = (),
) -> Tracker:
    """A tracker outside any form, ending with the user's `text` (and metadata)."""
    message = user_event(text, intent, entities)
    if metadata is not None:
        message["metadata"] = metadata
        message["parse_data"]["metadata"] = metadata
    history: list[EventDict] = [
        *[SlotSet(name, value) for name, value in (slots or {}).items()],
        action_event("action_listen"),
        message,
    ]
    tracker = build_tracker(history)
    tracker.sender_id = sender_id
    return tracker
