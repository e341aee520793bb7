"""Channel media (a KTP photo, a shared contact): acknowledged, never an answer.

Programme questions are answered in Rasa itself (`bot.rasa_nlg`).
"""

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.policy.answers import media_text
from bot.policy.programme import load_policy


def media_kind(tracker: Tracker) -> str | None:
    """ "contact" or "photo" when the latest message is channel media, else None."""
    latest = tracker.latest_message.get("entities") or []
    entities = {entity.get("entity") for entity in latest}
    if "contact_phone" in entities:
        return "contact"
    if entities & {"photo_file_id", "photo_url"}:
        return "photo"
    return None


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
