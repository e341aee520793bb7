"""Registration in the chat: the form, submitting, status, joining a batch.

Thin over :mod:`bot.registration`: the desk does the registry work (each call one
transaction, run in a thread), :mod:`bot.registration.status` writes the texts.
The caller is found from the conversation pseudonym (``tracker.sender_id``), so
nothing a user types can make the bot speak about someone else's registration.
"""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, Dict, List, cast

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.forms import (
    AnswersOnlyForm,
    accept_answer,
    keep_handed_over,
    opens,
    refuse_answer,
)
from actions.handoff import hand_off
from actions.personal import keep, reveal, revealed_slot
from actions.services import mail_queue, services
from actions.turn import turn_key
from bot.channels.base import SMS
from bot.clock import today_wib
from bot.handoff.models import REASON_UNFIXABLE
from bot.messages.events import HANDOFF_RESOLVED
from bot.policy.answers import FAQ_INTENTS, render_answer
from bot.policy.catalogue import module_texts, say
from bot.policy.programme import load_policy
from bot.policy.validation import (
    EMAIL_WORDS,
    KK_WORDS,
    NIK_WORDS,
    NikCheck,
    answer_of,
    mask_email,
    nik_birth_date_matches,
    parse_date,
    parse_yes_no,
    split_identity,
    validate_email,
    validate_kk,
    validate_nik,
)
from bot.privacy.detect import DATE, EMAIL, KK, NIK
from bot.registration import CODE_OK
from bot.registration.desk import Caller, Details, Standing
from bot.registration.status import (
    join_text,
    next_action,
    nik_problem_text,
    nik_result_text,
    status_text,
    submission_text,
)
from bot.registry.email_codes import MAX_ATTEMPTS
from bot.registry.models import STEP_DONE, STEP_NIK

log = logging.getLogger(__name__)

FORM = "registration_form"
LINK_FORM = "link_form"
DATA_SLOTS = ["reg_nik", "reg_kk", "reg_birth_date", "reg_birth_confirm"]
REG_SLOTS = [
    "reg_consent",
    "reg_name",
    "reg_email",
    "reg_email_code",
    *DATA_SLOTS,
    "reg_unclear",
]
LINK_SLOTS = ["link_nik", "link_code"]
NAME_MIN, NAME_MAX = 2, 128
MAX_AGE = 120
NOT_NAMES = frozenset(
    {"halo", "hai", "hi", "hello", "ya", "iya", "tidak", "gak", "ok", "oke", "p"}
)
_NAME = re.compile(r"[A-Za-z][A-Za-z .,'\-]*")
_RESEND = re.compile(r"\b(ulang|kirim ulang|kirim lagi|resend|lagi)\b", re.IGNORECASE)
_CODE = re.compile(r"\d[\d ]{3,12}")
_BATCH = re.compile(r"\b(\d{1,4})\b")
_AGREE = re.compile(r"\b(setuju|sepakat|bersedia|boleh|mau)\b", re.IGNORECASE)
__getattr__ = module_texts(
    {"AGENT_DONE": "registration.agent_done", "NO_CALLER": "registration.no_caller"}
)


_PER_CALL = "_prakerja_per_call"
"""The attribute of a `Tracker` holding what was looked up during its call."""


async def _once_per_call(
    tracker: Tracker, name: str, lookup: Callable[[], Awaitable[Any]]
) -> Any:
    """`lookup()`'s result, looked up once per action call: rasa_sdk makes a
    `Tracker` for each call, so what is kept on it lasts that call only."""
    kept: dict[str, Any] = tracker.__dict__.setdefault(_PER_CALL, {})
    if name not in kept:
        kept[name] = await lookup()
    return kept[name]


async def caller_of(tracker: Tracker) -> Caller | None:
    """The identity of this conversation (None outside the gateway), looked up
    once per action call: a form validator asks for its required slots, so for
    the caller, three times in one call (extraction, validation, the next
    slot). No validator changes who the caller is; where one links or erases a
    registration, its required slots come out the same either way (the turn's
    own link or erasure counts)."""
    return cast(
        Caller | None,
        await _once_per_call(
            tracker,
            "caller",
            lambda: asyncio.to_thread(services().desk.caller, tracker.sender_id),
        ),
    )


async def consent_of(tracker: Tracker, caller: Caller) -> bool:
    """Whether the caller gave consent already, looked up once per action call
    (as the caller is). A consent the same call records (`validate_reg_consent`)
    fills `reg_consent`, so the form's next slot is the same either way."""
    return bool(
        await _once_per_call(
            tracker,
            "consent",
            lambda: asyncio.to_thread(services().desk.has_consent, caller),
        )
    )


async def standing_of(caller: Caller | None) -> Standing | None:
    """The caller's registration, when linked."""
    if caller is None or caller.applicant_id is None:
        return None
    return await asyncio.to_thread(services().desk.standing, caller)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


async def _slot_date(tracker: Tracker, slot: str) -> date | None:
    """A date slot (kept as a token), revealed."""
    value = await revealed_slot(tracker, slot)
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


async def _birth_mismatch(tracker: Tracker) -> bool:
    """Typed birth date and the NIK's date part disagree (to be confirmed)."""
    nik = await revealed_slot(tracker, "reg_nik")
    born = await _slot_date(tracker, "reg_birth_date")
    return bool(nik) and born is not None and not nik_birth_date_matches(nik, born)


def _in_progress(tracker: Tracker) -> bool:
    """Some registration answers are kept from an unfinished form."""
    return any(tracker.get_slot(slot) is not None for slot in REG_SLOTS[1:-1])


def _clear(slots: List[str]) -> List[EventType]:
    return [SlotSet(slot, None) for slot in slots]


def _next_buttons(standing: Standing) -> List[Dict[str, str]]:
    """A button for the next action, when it is something to tap."""
    nik = standing.steps[STEP_NIK]
    current = standing.current_membership
    waiting = current is not None and current.result != "not_selected"
    if nik.status == STEP_DONE and not waiting and standing.open_batches:
        number = standing.open_batches[0].number
        payload = f'/join_batch{{"batch_number":"{number}"}}'
        return [{"title": say("buttons.join_batch", number=number), "payload": payload}]
    return []


def _unclear(
    slot: str, hint: str, dispatcher: CollectingDispatcher, tracker: Tracker
) -> Dict[str, Any]:
    """Refuse an answer with a precise hint; the second time, offer a person."""
    return refuse_answer(slot, hint, dispatcher, tracker, "reg_unclear")


def _accept(tracker: Tracker, values: Dict[str, Any]) -> Dict[str, Any]:
    return accept_answer(tracker, values, "reg_unclear")


async def _mail_code(dispatcher: CollectingDispatcher, mail_id: int | None) -> bool:
    """Send the queued code mail now (a repeated turn finds it sent, and sends
    nothing); tell the user when it could not be sent."""
    if mail_id is None:
        return False
    if await mail_queue().deliver(mail_id):
        return True
    log.warning("code mail %s not sent", mail_id)
    dispatcher.utter_message(text=say("registration.mail_failed"))
    return False


class CallerAction(Action, ABC):
    """An action about the caller's own registration.

    Outside the gateway there is no caller: `NO_CALLER` is said (unless
    `silent_without_caller`) and `without_caller()` returned; otherwise `act`
    gets the caller and their standing (None when not linked).
    """

    silent_without_caller = False

    def without_caller(self) -> List[EventType]:
        """Events when there is no caller."""
        return []

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Find the caller, then act."""
        caller = await caller_of(tracker)
        if caller is None:
            if not self.silent_without_caller:
                dispatcher.utter_message(text=say("registration.no_caller"))
            return self.without_caller()
        return await self.act(dispatcher, tracker, caller, await standing_of(caller))

    @abstractmethod
    async def act(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        caller: Caller,
        standing: Standing | None,
    ) -> List[EventType]:
        """Do the action for a known caller."""
        ...


async def _opening(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> List[EventType]:
    """What opening (or resuming) the registration says, and the answers it
    forgets: a correction types the data again; nothing for a new person (the
    consent question opens it) or outside the gateway (the submit says so)."""
    caller = await caller_of(tracker)
    if caller is None:
        return []
    standing = await standing_of(caller)
    if standing is not None:
        if standing.correctable:
            dispatcher.utter_message(text=say("registration.correct_data"))
            return _clear(["reg_name", *DATA_SLOTS, "reg_unclear"])
        return []
    if _in_progress(tracker):
        dispatcher.utter_message(response="utter_registration_continue")
    elif await consent_of(tracker, caller):
        dispatcher.utter_message(text=say("registration.start"))
    return []


class ValidateRegistrationForm(AnswersOnlyForm):
    """Open the registration, then validate every answer with a precise message.

    Rasa calls this once when the form opens (`opens`): what opening says is
    said then, before the first question, so starting costs one action call,
    not two.
    """

    def name(self) -> str:
        return "validate_registration_form"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Dict[str, Any]]:
        """At the opening, say what happens first; then validate."""
        opening: List[EventType] = []
        if opens(tracker):
            opening = await _opening(dispatcher, tracker)
            keep_handed_over(tracker, opening)
        return [*opening, *await super().run(dispatcher, tracker, domain)]

    async def required_slots(
        self,
        domain_slots: List[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[str]:
        """What is still to ask for this caller; nothing ends the form."""
        caller = await caller_of(tracker)
        if caller is None or tracker.get_slot("reg_consent") is False:
            return []
        data = ["reg_nik", "reg_kk", "reg_birth_date"]
        if await _birth_mismatch(tracker):
            data.append("reg_birth_confirm")
        if caller.applicant_id is not None:
            standing = await standing_of(caller)
            return ["reg_name", *data] if standing and standing.correctable else []
        consent = await consent_of(tracker, caller)
        first = [] if consent else ["reg_consent"]
        return [*first, "reg_name", "reg_email", "reg_email_code", *data]

    async def validate_reg_consent(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """Yes records consent; no ends the form with nothing stored."""
        text = _text(value)
        answer = parse_yes_no(text)  # negation wins: "tidak setuju", "gak mau"
        if answer is None and _AGREE.search(text):
            answer = True
        if answer is None:
            return _unclear(
                "reg_consent", say("registration.consent_unclear"), dispatcher, tracker
            )
        if answer:
            caller = await caller_of(tracker)
            if caller is not None:
                await asyncio.to_thread(services().desk.give_consent, caller)
            return _accept(tracker, {"reg_consent": True})
        return {"reg_consent": False}

    def validate_reg_name(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """A full name as on the KTP: letters, spaces and . , ' -"""
        name = " ".join(_text(value).split())
        if any(ch.isdigit() for ch in name):
            return _unclear(
                "reg_name",
                say("registration.name_digits"),
                dispatcher,
                tracker,
            )
        if (
            not NAME_MIN <= len(name) <= NAME_MAX
            or not _NAME.fullmatch(name)
            or name.lower() in NOT_NAMES
        ):
            return _unclear(
                "reg_name",
                say("registration.name_invalid"),
                dispatcher,
                tracker,
            )
        return _accept(tracker, {"reg_name": name.upper()})

    async def validate_reg_email(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """A valid address; a code is mailed to it at once."""
        text = answer_of(await reveal(tracker, value), EMAIL_WORDS)
        return await self._use_email(text, dispatcher, tracker)

    async def _use_email(
        self,
        text: str,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        *,
        again: bool = False,
    ) -> Dict[str, Any]:
        """Mail a code to the address `text`; `again`: the address already
        given, asked from the code question (ULANG, a code gone): at the code
        limit, while the last code mailed can still be typed, the address is
        kept and the code question stays (else the e-mail is asked again)."""
        check = validate_email(text)
        if not check.valid or check.normalized is None:
            return _unclear("reg_email", check.error or "", dispatcher, tracker)
        if check.warning:  # a likely typo (one or several corrections)
            return _unclear(
                "reg_email",
                say("registration.email_typo", warning=check.warning),
                dispatcher,
                tracker,
            )
        caller = await caller_of(tracker)
        if caller is None:
            return {"reg_email": None}
        request = await asyncio.to_thread(
            services().desk.request_email_code,
            caller,
            check.normalized,
            turn_key(tracker),
        )
        if not request.issued:
            later = (
                say("registration.later_minutes", minutes=request.wait_minutes)
                if request.wait_minutes <= 60
                else say("registration.later_tomorrow")
            )
            if again and request.usable:
                usable = say("registration.too_many_codes_usable", later=later)
                dispatcher.utter_message(text=usable)
                return {"reg_email_code": None}
            too_many = say("registration.too_many_codes", later=later)
            dispatcher.utter_message(text=too_many)
            return {"reg_email": None, "reg_email_code": None}
        if not await _mail_code(dispatcher, request.mail_id):
            return {"reg_email": None, "reg_email_code": None}
        kept = await keep(tracker, EMAIL, check.normalized)
        return _accept(tracker, {"reg_email": kept, "reg_email_code": None})

    async def validate_reg_email_code(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """The code from the mail; ULANG resends it; an address replaces the
        email."""
        text = await reveal(tracker, value)
        if "@" in text:
            return await self._use_email(
                answer_of(text, EMAIL_WORDS), dispatcher, tracker
            )
        email = await revealed_slot(tracker, "reg_email")
        if _RESEND.search(text) and not _CODE.search(text):
            return await self._use_email(email, dispatcher, tracker, again=True)
        typed = _CODE.search(text)
        if typed is None:
            return _unclear(
                "reg_email_code",
                say("registration.code_format"),
                dispatcher,
                tracker,
            )
        caller = await caller_of(tracker)
        if caller is None:
            return {"reg_email_code": None}
        check = await asyncio.to_thread(
            services().desk.check_email_code, caller, typed.group(), turn_key(tracker)
        )
        if check.ok:
            dispatcher.utter_message(text=say("registration.email_verified"))
            return _accept(tracker, {"reg_email_code": CODE_OK})
        if check.outcome == "wrong" and check.attempts_left:
            dispatcher.utter_message(
                text=say("registration.code_wrong", attempts_left=check.attempts_left)
            )
        elif check.outcome == "no_code":
            return await self._use_email(email, dispatcher, tracker, again=True)
        elif check.outcome == "expired":  # e.g. typed after hours: a new one
            dispatcher.utter_message(text=say("registration.code_expired_new"))
            return await self._use_email(email, dispatcher, tracker, again=True)
        else:
            dispatcher.utter_message(text=say("registration.code_expired"))
        return {"reg_email_code": None}

    async def validate_reg_nik(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """A structurally valid NIK (area, birth date part, serial); a message
        with the NIK, the KK number and the birth date together fills all three
        (one SMS instead of three), each checked as if typed alone."""
        text = await reveal(tracker, value)
        together = split_identity(text)
        nik_text = together[0] if together else answer_of(text, NIK_WORDS)
        check = validate_nik(nik_text)
        if not check.valid or check.normalized is None:
            return _unclear("reg_nik", check.error or "", dispatcher, tracker)
        kept = await keep(tracker, NIK, check.normalized)
        slots: Dict[str, Any] = {"reg_nik": kept, "reg_birth_confirm": None}
        if together is None:
            return _accept(tracker, slots)
        _, kk_text, born_text = together
        kk = await self._kk(kk_text, check.normalized, dispatcher, tracker)
        slots.update(kk)
        if born_text:
            born = await self.validate_reg_birth_date(
                born_text, dispatcher, tracker, domain
            )
            slots["reg_birth_date"] = born.get("reg_birth_date")
        return _accept(tracker, slots) if slots.get("reg_kk") else slots

    async def validate_reg_kk(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """A KK number of the right shape, not the NIK typed again."""
        nik = await revealed_slot(tracker, "reg_nik")
        text = answer_of(await reveal(tracker, value), KK_WORDS)
        return await self._kk(text, nik, dispatcher, tracker)

    @staticmethod
    async def _kk(
        text: str, nik: str, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> Dict[str, Any]:
        check = validate_kk(text)
        if not check.valid or check.normalized is None:
            return _unclear("reg_kk", check.error or "", dispatcher, tracker)
        if check.normalized == nik:
            return _unclear(
                "reg_kk",
                say("registration.kk_is_nik"),
                dispatcher,
                tracker,
            )
        return _accept(tracker, {"reg_kk": await keep(tracker, KK, check.normalized)})

    async def validate_reg_birth_date(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """A real past date; a mismatch with the NIK is asked about next."""
        today = today_wib()
        born = parse_date(await reveal(tracker, value), today=today)
        if born is None:
            return _unclear(
                "reg_birth_date",
                say("registration.birth_unreadable"),
                dispatcher,
                tracker,
            )
        if born >= today or today.year - born.year > MAX_AGE:
            return _unclear(
                "reg_birth_date",
                say("registration.birth_impossible"),
                dispatcher,
                tracker,
            )
        kept = await keep(tracker, DATE, born.isoformat())
        return _accept(tracker, {"reg_birth_date": kept, "reg_birth_confirm": None})

    async def validate_reg_birth_confirm(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """Yes keeps the typed date; no or a new date replaces it."""
        text = await reveal(tracker, value)
        born = parse_date(text, today=today_wib())
        if born is not None:
            result = await self.validate_reg_birth_date(
                text, dispatcher, tracker, domain
            )
            return {**result, "reg_birth_confirm": None}
        answer = parse_yes_no(text)
        if answer is None:
            return _unclear(
                "reg_birth_confirm",
                say("registration.birth_confirm_unclear"),
                dispatcher,
                tracker,
            )
        if answer:
            return _accept(tracker, {"reg_birth_confirm": True})
        return {"reg_birth_date": None, "reg_birth_confirm": None}


class ActionAskRegEmailCode(Action):
    """Ask for the code, saying where it went."""

    def name(self) -> str:
        return "action_ask_reg_email_code"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        email = await revealed_slot(tracker, "reg_email")
        dispatcher.utter_message(
            text=say("registration.code_sent", email=mask_email(email))
        )
        return []


def _differing_parts(check: NikCheck, born: date) -> str:
    """Which of day, month and year differ between a NIK and a birth date."""
    parts = [
        name
        for name, in_nik, typed in (
            ("day", check.birth_date_day, born.day),
            ("month", check.birth_date_month, born.month),
            ("year", check.birth_date_yy, born.year % 100),
        )
        if in_nik != typed
    ]
    joiner = f" {say('registration.birth_part_and')} "
    return joiner.join(say(f"registration.birth_part_{name}") for name in parts)


class ActionAskRegBirthConfirm(Action):
    """Ask about a birth date that differs from the NIK's date part."""

    def name(self) -> str:
        return "action_ask_reg_birth_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        check = validate_nik(await revealed_slot(tracker, "reg_nik"))
        born = await _slot_date(tracker, "reg_birth_date")
        differ = _differing_parts(check, born) if check.valid and born else ""
        where = say("registration.birth_mismatch_where", parts=differ) if differ else ""
        # The dates are not repeated: replies are kept in the transcript.
        dispatcher.utter_message(
            text=say("registration.birth_mismatch", where=where),
            buttons=[
                {"title": say("buttons.yes_right"), "payload": "Ya"},
                {"title": say("buttons.no"), "payload": "Tidak"},
            ],
        )
        return []


class ActionSubmitRegistration(CallerAction):
    """Send the completed form to the registry and say what happens next."""

    def name(self) -> str:
        return "action_submit_registration"

    def without_caller(self) -> List[EventType]:
        """Forget the answers."""
        return _clear(REG_SLOTS)

    async def act(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        caller: Caller,
        standing: Standing | None,
    ) -> List[EventType]:
        if tracker.get_slot("reg_consent") is False:
            dispatcher.utter_message(text=say("registration.declined"))
            return _clear(REG_SLOTS)
        key = turn_key(tracker)
        # A repeated turn: the first run's answer, not the status it led to.
        submission = await asyncio.to_thread(services().desk.submitted, key)
        if submission is None:
            if standing is not None and not standing.correctable:
                dispatcher.utter_message(text=status_text(standing, caller.channel))
                return _clear(REG_SLOTS)
            details = await self._details(tracker, caller)
            if details is None:
                dispatcher.utter_message(text=say("registration.incomplete"))
                return []
            submission = await asyncio.to_thread(
                services().desk.submit, caller, details, key
            )
        dispatcher.utter_message(text=submission_text(submission))
        if submission.outcome in ("nik_taken", "kk_full"):
            return _clear([*DATA_SLOTS, "reg_unclear"])
        if submission.outcome == "email_unproven":
            return _clear(["reg_email", "reg_email_code"])
        return _clear(REG_SLOTS)

    @staticmethod
    async def _details(tracker: Tracker, caller: Caller) -> Details | None:
        """The answers, revealed and checked again (an expired token is not a
        value): None when any is missing."""
        born = await _slot_date(tracker, "reg_birth_date")
        name = tracker.get_slot("reg_name")
        nik = validate_nik(await revealed_slot(tracker, "reg_nik")).normalized
        kk = validate_kk(await revealed_slot(tracker, "reg_kk"))
        email = validate_email(await revealed_slot(tracker, "reg_email"))
        if not (born and name and nik and kk.valid and kk.normalized):
            return None
        if caller.applicant_id is None and (
            not email.valid or tracker.get_slot("reg_email_code") != CODE_OK
        ):
            return None
        return Details(
            full_name=str(name),
            email=email.normalized if email.valid else None,
            nik=nik,
            kk_number=kk.normalized,
            birth_date=born,
        )


class ActionCancelRegistration(Action):
    """Leave the registration or link form; unsent answers are forgotten."""

    def name(self) -> str:
        return "action_cancel_registration"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if tracker.active_loop_name == LINK_FORM:
            dispatcher.utter_message(text=say("registration.link_cancelled"))
        else:
            dispatcher.utter_message(text=say("registration.cancelled"))
        return [
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            *_clear([*REG_SLOTS, *LINK_SLOTS]),
        ]


class ActionRegistrationStatus(CallerAction):
    """Where the caller's registration stands, and the single next action.

    The gateway also delivers internal events as this intent (metadata
    ``internal``): "nik_checked" tells the NIK check's result (a second refusal
    of corrected data goes to a person), "handoff_resolved" says the agent is
    done and where the registration stands now.
    """

    def name(self) -> str:
        return "action_registration_status"

    async def act(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        caller: Caller,
        standing: Standing | None,
    ) -> List[EventType]:
        internal = (tracker.latest_message.get("metadata") or {}).get("internal")
        if internal == HANDOFF_RESOLVED:
            return self._after_agent(dispatcher, tracker, caller, standing)
        if standing is None:
            if not internal:  # an event for a registration no longer linked here
                dispatcher.utter_message(**unlinked_reply(caller, tracker))
            return []
        if not internal:
            dispatcher.utter_message(
                text=status_text(standing, caller.channel),
                buttons=_next_buttons(standing),
            )
            return []
        if standing.stuck:
            dispatcher.utter_message(text=nik_result_text(standing, caller.channel))
            return await hand_off(dispatcher, tracker, REASON_UNFIXABLE)
        dispatcher.utter_message(
            text=nik_result_text(standing, caller.channel),
            buttons=_next_buttons(standing),
        )
        return []

    @staticmethod
    def _after_agent(
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        caller: Caller,
        standing: Standing | None,
    ) -> List[EventType]:
        """The agent resolved the ticket: the bot is back, with what is next."""
        if standing is not None:
            dispatcher.utter_message(
                text=say(
                    "registration.agent_done_status",
                    status=status_text(standing, caller.channel),
                ),
                buttons=_next_buttons(standing),
            )
        elif _in_progress(tracker):
            dispatcher.utter_message(text=say("registration.agent_done_continue"))
        else:
            dispatcher.utter_message(text=say("registration.agent_done_more"))
        return []


def unlinked_reply(caller: Caller, tracker: Tracker) -> Dict[str, Any]:
    """What to say about status to someone not linked to a registration."""
    if _in_progress(tracker):
        return {"text": say("registration.unfinished")}
    if caller.channel == "sms":
        return {"text": say("registration.not_registered", channel=SMS)}
    return {
        "text": say("registration.not_registered", channel=caller.channel),
        "buttons": [
            {"title": say("buttons.link_account"), "payload": "/link_account"},
            {"title": say("buttons.register"), "payload": "/start_registration"},
        ],
    }


class ActionRegistrationHelp(Action):
    """A problem intent: the caller's own situation first, then general help."""

    def name(self) -> str:
        return "action_registration_help"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False)
        caller = await caller_of(tracker)
        standing = await standing_of(caller)
        email = await revealed_slot(tracker, "reg_email")
        channel = caller.channel if caller is not None else None
        personal = self._personal(intent, standing, tracker, email, channel)
        if personal:
            dispatcher.utter_message(text=personal)
            return []
        if intent in FAQ_INTENTS:
            text = tracker.latest_message.get("text") or ""
            dispatcher.utter_message(text=render_answer(intent, load_policy(), text))
        else:
            dispatcher.utter_message(response="utter_please_rephrase")
        return []

    @staticmethod
    def _personal(
        intent: str | None,
        standing: Standing | None,
        tracker: Tracker,
        email: str,
        channel: str | None,
    ) -> str | None:
        if standing is not None:
            if intent == "nik_problem":
                return nik_problem_text(standing, channel)
            if intent == "email_problem" and standing.applicant.email:
                return say(
                    "registration.email_done",
                    email=mask_email(standing.applicant.email),
                    next=next_action(standing),
                )
            return None
        if (
            intent in ("email_problem", "otp_problem")
            and email
            and (tracker.get_slot("reg_email_code") is None)
        ):
            return say("registration.code_resend_hint", email=mask_email(email))
        return None


class ActionJoinBatch(CallerAction):
    """Join the open batch (or the one named); harmless when repeated."""

    def name(self) -> str:
        return "action_join_batch"

    async def act(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        caller: Caller,
        standing: Standing | None,
    ) -> List[EventType]:
        if caller.applicant_id is None:
            dispatcher.utter_message(**unlinked_reply(caller, tracker))
            return []
        number = self._number(tracker)
        result = await asyncio.to_thread(
            services().desk.join, caller, number, turn_key(tracker)
        )
        buttons = [
            {
                "title": say("buttons.join_batch", number=choice.number),
                "payload": f'/join_batch{{"batch_number":"{choice.number}"}}',
            }
            for choice in result.choices
        ]
        dispatcher.utter_message(text=join_text(result), buttons=buttons)
        return []

    @staticmethod
    def _number(tracker: Tracker) -> int | None:
        entity = next(tracker.get_latest_entity_values("batch_number"), None)
        for text in (entity, tracker.latest_message.get("text")):
            found = _BATCH.search(str(text or ""))
            if found:
                return int(found.group(1))
        return None


class ValidateLinkForm(AnswersOnlyForm):
    """Link a Telegram account to a registration with a code sent by e-mail."""

    started_afresh = LINK_SLOTS
    """A session that expired mid-way carries `link_nik` over: validated again
    it read as a wrong NIK, and the code asked next would be dead by then."""

    def name(self) -> str:
        return "validate_link_form"

    async def required_slots(
        self,
        domain_slots: List[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[str]:
        """Nothing to ask on SMS (the phone itself decides) or when linked
        (unless by this very turn, repeated: its code is validated again)."""
        caller = await caller_of(tracker)
        if caller is None or caller.channel == "sms":
            return []
        if caller.applicant_id is not None:
            replayed = await asyncio.to_thread(
                services().desk.link_confirmed, turn_key(tracker)
            )
            if replayed is None:
                return []
        return ["link_nik", "link_code"]

    async def validate_link_nik(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """Mail a code to the NIK's registered e-mail; say the same either way."""
        check = validate_nik(answer_of(await reveal(tracker, value), NIK_WORDS))
        if not check.valid or check.normalized is None:
            dispatcher.utter_message(text=check.error or "")
            return {"link_nik": None}
        caller = await caller_of(tracker)
        if caller is None:
            return {"link_nik": None}
        request = await asyncio.to_thread(
            services().desk.request_link_code,
            caller,
            check.normalized,
            turn_key(tracker),
        )
        if request.issued:
            # A failed mail is not told: it would reveal that the NIK exists.
            await _mail_code(CollectingDispatcher(), request.mail_id)
        return {"link_nik": "sent"}

    async def validate_link_code(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """The code from the registered e-mail."""
        caller = await caller_of(tracker)
        if caller is None:
            return {"link_code": "failed"}
        check = await asyncio.to_thread(
            services().desk.confirm_link_code, caller, _text(value), turn_key(tracker)
        )
        if check.ok:
            return {"link_code": "linked"}
        # The same reply whether or not the NIK had a code sent: a wrong code must
        # not tell that the NIK is registered.
        if _link_tries(tracker) + 1 < MAX_ATTEMPTS:
            dispatcher.utter_message(text=say("registration.link_code_wrong"))
            return {"link_code": None}
        return {"link_code": "failed"}


def _link_tries(tracker: Tracker) -> int:
    """Link codes refused since the NIK was last answered (slot events)."""
    tries = 0
    for event in tracker.events:
        if event.get("event") != "slot":
            continue
        if event.get("name") == "link_nik":
            tries = 0
        elif event.get("name") == "link_code" and event.get("value") is None:
            tries += 1
    return tries


class ActionLinkDone(CallerAction):
    """Say whether the account is now linked, then show the status."""

    def name(self) -> str:
        return "action_link_done"

    def without_caller(self) -> List[EventType]:
        """Forget the link answers."""
        return _clear(LINK_SLOTS)

    async def act(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        caller: Caller,
        standing: Standing | None,
    ) -> List[EventType]:
        if standing is not None:
            dispatcher.utter_message(
                text=say(
                    "registration.linked", status=status_text(standing, caller.channel)
                ),
                buttons=_next_buttons(standing),
            )
        elif caller.channel == "sms":
            dispatcher.utter_message(text=say("registration.sms_status_only"))
        else:
            dispatcher.utter_message(text=say("registration.link_failed"))
        return _clear(LINK_SLOTS)
