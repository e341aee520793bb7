"""Actions the previous model still calls, kept for one release.

A rolling update replaces the action server's pods in seconds and Rasa's in
minutes (a model loads slowly): meanwhile Rasa pods of the previous release
call `action_answer_faq` (programme answers now render in Rasa:
`bot.rasa_nlg`) and `action_registration_start` (the form's validator now says
the opening). Unknown, both would fail their turns until the last old pod is
gone. Remove this module in the release after the one that dropped them from
domain.yml.
"""

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.policy.answers import faq_answer


class ActionAnswerFaq(Action):
    """The previous model's programme answer, rendered as Rasa now renders it."""

    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[Dict[str, Any]]:
        intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False)
        answer = faq_answer(intent, tracker.latest_message.get("text") or "")
        if answer is None:
            dispatcher.utter_message(response="utter_please_rephrase")
        else:
            dispatcher.utter_message(text=answer)
        return []


class ActionRegistrationStart(Action):
    """The previous model's first step of the registration: now nothing, as the
    form's validator, called next, says the opening."""

    def name(self) -> str:
        return "action_registration_start"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[Dict[str, Any]]:
        return []
