"""What every form validator of the assistant shares: media are never answers,
and unclear answers are counted (the second in a row also offers a person)."""

from abc import ABC, abstractmethod
from typing import Any, Dict, List

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.fallback import FALLBACKS_BEFORE_HUMAN
from actions.media import media_kind
from bot.clock import now_wib
from bot.policy.answers import call_center_text, media_text
from bot.policy.catalogue import say
from bot.policy.programme import load_policy


class AnswersOnlyForm(FormValidationAction, ABC):
    """A form validator that never takes channel media as an answer."""

    @abstractmethod
    def name(self) -> str:
        """Each form names its validator."""

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Dict[str, Any]]:
        """A photo or contact is acknowledged, never taken as an answer."""
        kind = media_kind(tracker)
        if kind:
            dispatcher.utter_message(text=media_text(kind, load_policy()))
            return [SlotSet(slot, None) for slot in tracker.slots_to_validate()]
        return await super().run(dispatcher, tracker, domain)


def refuse_answer(
    slot: str,
    hint: str,
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    counter: str,
) -> Dict[str, Any]:
    """Refuse an unclear answer with a precise hint, counted in `counter`; from
    the second in a row on, also give the call center."""
    count = int(tracker.get_slot(counter) or 0) + 1
    if count >= FALLBACKS_BEFORE_HUMAN:
        call_center = call_center_text(load_policy(), now_wib())
        hint = say("forms.unclear_again", hint=hint, call_center=call_center)
    dispatcher.utter_message(text=hint)
    return {slot: None, counter: count}


def accept_answer(
    tracker: Tracker, values: Dict[str, Any], counter: str
) -> Dict[str, Any]:
    """A valid answer: also reset the count of unclear answers."""
    if tracker.get_slot(counter):
        return {**values, counter: 0}
    return values
