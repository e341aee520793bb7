"""Answers to programme questions, rendered from the versioned policy."""

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.policy.answers import (
    FAQ_INTENTS,
    media_text,
    render_answer,
)
from bot.policy.programme import load_policy


def media_kind(tracker: Tracker) -> str | None:
    """"contact" or "photo" when the latest message is channel media, else None."""
    latest = tracker.latest_message.get("entities") or []
    entities = {entity.get("entity") for entity in latest}
    if "contact_phone" in entities:
        return "contact"
    if entities & {"photo_file_id", "photo_url"}:
        return "photo"
    return None


class ActionAnswerFaq(Action):
    """Answer the latest programme question (specific topic when one is asked)."""

    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[Dict[str, Any]]:
        intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False)
        if intent not in FAQ_INTENTS:
            dispatcher.utter_message(response="utter_please_rephrase")
            return []
        text = tracker.latest_message.get("text") or ""
        dispatcher.utter_message(text=render_answer(intent, load_policy(), text))
        return []


class ActionMediaReceived(Action):
    """Acknowledge a photo (KTP) or a shared contact sent through a channel."""

    def name(self) -> str:
        return "action_media_received"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[Dict[str, Any]]:
        dispatcher.utter_message(
            text=media_text(media_kind(tracker) or "photo", load_policy())
        )
        return []
