"""The person's rights over their data in the chat: what is held, erasure,
consent withdrawal; and the consent question, which states the retention period.

Thin over :mod:`bot.privacy.desk` (the caller is found from the conversation
pseudonym, so only the registration's own channel is told or may erase) and
:mod:`bot.privacy.texts`. Erasure is a form: a yes in the chat, then the code
mailed to the registered e-mail; someone not registered from this chat only
confirms in the chat (their chat history is all there is).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.forms import AnswersOnlyForm, accept_answer, refuse_answer
from actions.registration import _CODE, _mail_code, caller_of
from actions.services import services
from actions.turn import turn_key
from bot.channels.base import SMS
from bot.policy.validation import parse_yes_no
from bot.privacy import texts
from bot.privacy.desk import PrivacyDesk

log = logging.getLogger(__name__)

FORM = "erasure_form"
SLOTS = ["erasure_confirm", "erasure_code", "erasure_unclear"]
ERASED = "erased"
FAILED = "failed"


def privacy() -> PrivacyDesk:
    """The process's privacy desk."""
    desk = services().privacy
    if desk is None:
        raise RuntimeError("the services have no privacy desk")
    return desk


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


class ActionAskRegConsent(Action):
    """The consent question, with the retention period from the settings; on
    SMS without the numbered menu, so the question stays one segment (the
    person types SETUJU or TIDAK)."""

    def name(self) -> str:
        return "action_ask_reg_consent"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        caller = await caller_of(tracker)
        buttons = [
            {"title": "Setuju", "payload": "Setuju"},
            {"title": "Tidak", "payload": "Tidak"},
        ]
        dispatcher.utter_message(
            text=texts.consent_text(privacy().retention_days),
            buttons=[] if caller is not None and caller.channel == SMS else buttons,
        )
        return []


class ActionTellMyData(Action):
    """What is held about the caller: masked, only to the registration's own
    channel; someone else hears that only this chat is held."""

    def name(self) -> str:
        return "action_tell_my_data"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        caller = await caller_of(tracker)
        if caller is None:
            dispatcher.utter_message(text=texts.NO_CALLER)
            return []
        desk = privacy()
        held = await asyncio.to_thread(desk.held, caller)
        if held is None:
            dispatcher.utter_message(
                text=texts.nothing_registered_text(desk.retention_days)
            )
        else:
            dispatcher.utter_message(text=texts.held_text(held))
        return []


class ActionAskErasureConfirm(Action):
    """Ask to confirm the erasure (what is lost depends on the caller)."""

    def name(self) -> str:
        return "action_ask_erasure_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        caller = await caller_of(tracker)
        registered = caller is not None and caller.applicant_id is not None
        dispatcher.utter_message(
            text=texts.ERASURE_QUESTION
            if registered
            else texts.ERASURE_QUESTION_UNREGISTERED,
            buttons=[
                {"title": "Ya", "payload": "Ya"},
                {"title": "Tidak", "payload": "Tidak"},
            ],
        )
        return []


class ValidateErasureForm(AnswersOnlyForm):
    """The erasure: a yes, then (registered callers) the e-mailed code."""

    started_afresh = SLOTS
    """A yes kept from a session that expired mid-way read as an unclear
    answer, and its code is dead by then: the yes is asked again."""

    def name(self) -> str:
        return "validate_erasure_form"

    async def required_slots(
        self,
        domain_slots: List[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[str]:
        """Nothing without a caller; the code only for a registration (or when
        this very turn, repeated, erased it: its code is validated again)."""
        caller = await caller_of(tracker)
        if caller is None or tracker.get_slot("erasure_confirm") is False:
            return []
        if caller.applicant_id is None:
            replayed = await asyncio.to_thread(
                privacy().erasure_replayed, turn_key(tracker)
            )
            if replayed is None:
                return ["erasure_confirm"]
        return ["erasure_confirm", "erasure_code"]

    async def validate_erasure_confirm(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """Yes mails the code (registered callers); no ends the form."""
        answer = parse_yes_no(_text(value))
        if answer is None:
            return refuse_answer(
                "erasure_confirm",
                texts.ERASURE_UNCLEAR,
                dispatcher,
                tracker,
                "erasure_unclear",
            )
        if not answer:
            return {"erasure_confirm": False}
        caller = await caller_of(tracker)
        if caller is None or caller.applicant_id is None:
            return accept_answer(tracker, {"erasure_confirm": True}, "erasure_unclear")
        request = await asyncio.to_thread(
            privacy().request_erasure_code, caller, turn_key(tracker)
        )
        if not request.issued or request.masked_email is None:
            dispatcher.utter_message(
                text=texts.wait_text(request.wait_minutes)
                if request.wait_minutes
                else texts.NO_EMAIL
            )
            return {"erasure_confirm": True, "erasure_code": FAILED}
        if not await _mail_code(dispatcher, request.mail_id):
            return {"erasure_confirm": True, "erasure_code": FAILED}
        dispatcher.utter_message(text=texts.code_sent_text(request.masked_email))
        return accept_answer(tracker, {"erasure_confirm": True}, "erasure_unclear")

    async def validate_erasure_code(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """The right code erases; a wrong one is asked again while tries
        remain; an expired or used-up one ends the form."""
        if value in (ERASED, FAILED):
            return {"erasure_code": value}
        typed = _CODE.search(_text(value))
        if typed is None:
            dispatcher.utter_message(response="utter_ask_erasure_code")
            return {"erasure_code": None}
        caller = await caller_of(tracker)
        if caller is None:
            return {"erasure_code": FAILED}
        result = await asyncio.to_thread(
            privacy().confirm_erasure,
            caller,
            typed.group().replace(" ", ""),
            turn_key(tracker),
        )
        if result.outcome == ERASED:
            return {"erasure_code": ERASED}
        if result.outcome == "wrong" and result.attempts_left > 0:
            dispatcher.utter_message(text=texts.wrong_code_text(result.attempts_left))
            return {"erasure_code": None}
        dispatcher.utter_message(text=texts.code_refused_text(result.outcome))
        return {"erasure_code": FAILED}


class ActionErasureDone(Action):
    """Say how the erasure ended (or that it stopped) and leave the form."""

    def name(self) -> str:
        return "action_erasure_done"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        caller = await caller_of(tracker)
        confirmed = tracker.get_slot("erasure_confirm")
        code = tracker.get_slot("erasure_code")
        if caller is None:
            dispatcher.utter_message(text=texts.NO_CALLER)
        elif confirmed is not True:
            dispatcher.utter_message(text=texts.ERASURE_KEPT)
        elif code == ERASED:
            dispatcher.utter_message(text=texts.ERASED)
        elif code == FAILED:
            dispatcher.utter_message(text=texts.ERASURE_STOPPED)
        elif caller.applicant_id is None:
            await asyncio.to_thread(
                privacy().erase_unregistered, caller, turn_key(tracker)
            )
            dispatcher.utter_message(text=texts.ERASED_UNREGISTERED)
        else:
            dispatcher.utter_message(text=texts.ERASURE_STOPPED)
        return [
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            *[SlotSet(slot, None) for slot in SLOTS],
        ]


class ActionWithdrawConsent(Action):
    """Withdraw consent: processing stops; erasure is offered."""

    def name(self) -> str:
        return "action_withdraw_consent"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        caller = await caller_of(tracker)
        if caller is None:
            dispatcher.utter_message(text=texts.NO_CALLER)
            return []
        withdrawn = await asyncio.to_thread(
            privacy().withdraw, caller, turn_key(tracker)
        )
        dispatcher.utter_message(
            text=texts.WITHDRAWN if withdrawn else texts.WITHDRAWN_NOTHING
        )
        return []
