"""The eligibility check: form validator, verdict and cancellation."""

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.forms import AnswersOnlyForm, accept_answer, refuse_answer
from actions.personal import keep, reveal, revealed_slot
from bot.clock import today_wib
from bot.policy.catalogue import module_texts, say
from bot.policy.eligibility import (
    EligibilityAnswers,
    age_on,
    assess,
    questions_needed,
)
from bot.policy.programme import load_policy
from bot.policy.validation import parse_age, parse_count, parse_date, parse_yes_no
from bot.privacy.detect import DATE

FORM_NAME = "eligibility_form"

# Form slot asked for each question of bot.policy.eligibility.
SLOT_FOR_QUESTION: Dict[str, str] = {
    "birth_date": "elig_age",
    "citizen": "elig_citizen",
    "in_education": "elig_in_education",
    "excluded_occupation": "elig_excluded_occupation",
    "prior_participant": "elig_prior_participant",
    "kk_registered_count": "elig_kk_count",
    "receives_social_aid": "elig_social_aid",
}
QUESTION_FOR_SLOT = {slot: question for question, slot in SLOT_FOR_QUESTION.items()}
UNCLEAR_SLOT = "elig_unclear"
ELIGIBILITY_SLOTS = [*SLOT_FOR_QUESTION.values(), "elig_birth_date", UNCLEAR_SLOT]
MAX_AGE = 120
MAX_KK_COUNT = 20

__getattr__ = module_texts(
    {
        "YES_NO_HINT": "eligibility_form.yes_no_hint",
        "AGE_HINT": "eligibility_form.age_hint",
        "KK_HINT": "eligibility_form.kk_hint",
    }
)


def _bool_slot(tracker: Tracker, slot: str) -> bool | None:
    value = tracker.get_slot(slot)
    return value if isinstance(value, bool) else None


def _int_slot(tracker: Tracker, slot: str) -> int | None:
    value = tracker.get_slot(slot)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


async def answers_from_tracker(tracker: Tracker) -> EligibilityAnswers:
    """Build the answers known so far; raw (unvalidated) slot text counts as unknown.
    The birth date is kept as a token (`actions.personal`)."""
    birth_date = await revealed_slot(tracker, "elig_birth_date")
    return EligibilityAnswers(
        birth_date=parse_date(birth_date) if birth_date else None,
        age=_int_slot(tracker, "elig_age"),
        citizen=_bool_slot(tracker, "elig_citizen"),
        in_education=_bool_slot(tracker, "elig_in_education"),
        excluded_occupation=_bool_slot(tracker, "elig_excluded_occupation"),
        prior_participant=_bool_slot(tracker, "elig_prior_participant"),
        kk_registered_count=_int_slot(tracker, "elig_kk_count"),
        receives_social_aid=_bool_slot(tracker, "elig_social_aid"),
    )


def _unreadable(
    slot: str, dispatcher: CollectingDispatcher, tracker: Tracker, hint: str
) -> Dict[str, Any]:
    """Reject an unclear answer; after two in a row, also offer a person."""
    return refuse_answer(slot, hint, dispatcher, tracker, UNCLEAR_SLOT)


def _accept(tracker: Tracker, values: Dict[str, Any]) -> Dict[str, Any]:
    """A valid answer: also reset the count of unclear answers."""
    return accept_answer(tracker, values, UNCLEAR_SLOT)


def _yes_no(
    slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker
) -> Dict[str, Any]:
    if isinstance(value, bool):
        return _accept(tracker, {slot: value})
    question = QUESTION_FOR_SLOT[slot]
    answer = parse_yes_no(str(value), question=question) if value is not None else None
    if answer is None:
        return _unreadable(
            slot, dispatcher, tracker,
            say("eligibility_form.yes_no_unclear"),
        )
    return _accept(tracker, {slot: answer})


class ValidateEligibilityForm(AnswersOnlyForm):
    """Validate each eligibility answer; ask only what the policy needs."""

    def name(self) -> str:
        return "validate_eligibility_form"

    async def required_slots(
        self,
        domain_slots: List[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[str]:
        """Slots the active policy cares about; none left once the verdict is sure."""
        policy, today = load_policy(), today_wib()
        relevant = [
            SLOT_FOR_QUESTION[q]
            for q in questions_needed(policy, EligibilityAnswers(), today)
        ]
        if questions_needed(policy, await answers_from_tracker(tracker), today):
            return relevant
        # A verdict is already certain: keep only what was answered.
        return [slot for slot in relevant if tracker.get_slot(slot) is not None]

    async def validate_elig_age(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """Accept a birth date (any common format) or an age in years."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if 0 <= value <= MAX_AGE:
                return _accept(tracker, {"elig_age": int(value)})
            return _unreadable(
                "elig_age", dispatcher, tracker, say("eligibility_form.age_hint")
            )
        text = await reveal(tracker, value)
        today = today_wib()
        born = parse_date(text, today=today)
        if born is not None:
            if born > today:
                dispatcher.utter_message(text=say("eligibility_form.future_date"))
                return {"elig_age": None, "elig_birth_date": None}
            return _accept(
                tracker,
                {
                    "elig_age": age_on(born, today),
                    "elig_birth_date": await keep(tracker, DATE, born.isoformat()),
                },
            )
        age = parse_age(text)
        if age is None:
            return _unreadable(
                "elig_age", dispatcher, tracker, say("eligibility_form.age_hint")
            )
        return _accept(tracker, {"elig_age": age})

    def validate_elig_citizen(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """Citizen with a KTP: yes or no."""
        return _yes_no("elig_citizen", value, dispatcher, tracker)

    def validate_elig_in_education(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """Currently at school or university: yes or no."""
        return _yes_no("elig_in_education", value, dispatcher, tracker)

    def validate_elig_excluded_occupation(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """Holds an excluded office or job: yes or no."""
        return _yes_no("elig_excluded_occupation", value, dispatcher, tracker)

    def validate_elig_prior_participant(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """Already a participant, or revoked: yes or no."""
        return _yes_no("elig_prior_participant", value, dispatcher, tracker)

    def validate_elig_social_aid(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """Receives other social aid: yes or no."""
        return _yes_no("elig_social_aid", value, dispatcher, tracker)

    def validate_elig_kk_count(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[str, Any]:
        """How many others on the same family card are already participants."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if 0 <= value <= MAX_KK_COUNT:
                return _accept(tracker, {"elig_kk_count": int(value)})
            return _unreadable(
                "elig_kk_count", dispatcher, tracker, say("eligibility_form.kk_hint")
            )
        count = parse_count(str(value or ""))
        if count is None or count > MAX_KK_COUNT:
            return _unreadable(
                "elig_kk_count", dispatcher, tracker, say("eligibility_form.kk_hint")
            )
        return _accept(tracker, {"elig_kk_count": count})


class ActionEligibilityVerdict(Action):
    """Tell the verdict, the reasons and the next step, then forget the answers."""

    def name(self) -> str:
        return "action_eligibility_verdict"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[Dict[str, Any]]:
        answers = await answers_from_tracker(tracker)
        verdict = assess(load_policy(), answers, today_wib())
        if verdict.eligible is None:
            head = say("eligibility_form.verdict_unknown")
        elif verdict.eligible:
            head = say("eligibility_form.verdict_eligible")
        else:
            head = say("eligibility_form.verdict_not_eligible")
        lines = [head, *verdict.reasons, verdict.next_step]
        dispatcher.utter_message(text="\n".join(line for line in lines if line))
        return [SlotSet(slot, None) for slot in ELIGIBILITY_SLOTS]


class ActionCancelForm(Action):
    """Leave the eligibility check cleanly when the user says stop/batal."""

    def name(self) -> str:
        return "action_cancel_form"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[Dict[str, Any]]:
        dispatcher.utter_message(response="utter_form_cancelled")
        return [
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            *[SlotSet(slot, None) for slot in ELIGIBILITY_SLOTS],
        ]

