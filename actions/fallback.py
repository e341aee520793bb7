"""What to do when the NLU is not sure: rephrase once, then hand off to a person."""

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import hand_off
from bot.handoff.models import REASON_FALLBACK

FALLBACK_INTENT = "nlu_fallback"
FALLBACKS_BEFORE_HUMAN = 2


def consecutive_fallbacks(events: List[Dict[str, Any]]) -> int:
    """Count the user's latest messages in a row that ended in the NLU fallback."""
    count = 0
    for event in reversed(events):
        if event.get("event") != "user":
            continue
        intent = (event.get("parse_data") or {}).get("intent") or {}
        if intent.get("name") != FALLBACK_INTENT:
            break
        count += 1
    return count


class ActionHandleFallback(Action):
    """Ask to rephrase; after two misunderstandings in a row, hand off."""

    def name(self) -> str:
        return "action_handle_fallback"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[Dict[str, Any]]:
        # The misunderstood message must not steer the rest of the dialogue.
        if consecutive_fallbacks(tracker.events) >= FALLBACKS_BEFORE_HUMAN:
            return [
                UserUtteranceReverted(),
                *await hand_off(dispatcher, tracker, REASON_FALLBACK),
            ]
        dispatcher.utter_message(response="utter_please_rephrase")
        return [UserUtteranceReverted()]
