"""What every form validator of the assistant shares."""

from abc import ABC, abstractmethod
from typing import Any, Dict, List

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.faq import media_kind
from bot.policy.answers import media_text
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
