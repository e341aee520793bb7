"""Something typed that no question asked for: a code from our e-mail, or data.

A code mailed for a registration, a link or an erasure is typed at that form's
question. Typed when no form waits for it (the form ended with the Rasa session
after an hour's silence, or the code was already used), it is dead, and the
person needs to know how to get a new one, not to be told off for sending
personal data, which is what anything else typed unprompted is told.
"""

import re
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.policy.catalogue import say
from bot.registry.email_codes import CODE_DIGITS, CODE_TTL

CODE_ALONE = re.compile(
    r"\s*(?:(?:ini|itu)\s+)?(?:kode(?:nya)?(?:\s+(?:saya|aku|verifikasi))?\s*:?\s*)?"
    rf"\d(?:\s?\d){{{CODE_DIGITS - 1}}}\s*[.!]?\s*",
    re.IGNORECASE,
)
"""A message that is one of our codes and nothing else ("482913", "kodenya 482 913")."""


def is_code_alone(text: str) -> bool:
    """Whether `text` is a code as we mail them, with at most a word naming it."""
    return CODE_ALONE.fullmatch(text) is not None


class ActionInformUnprompted(Action):
    """Answer data or a code that was sent without being asked for."""

    def name(self) -> str:
        return "action_inform_unprompted"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[Dict[str, Any]]:
        text = tracker.latest_message.get("text") or ""
        if is_code_alone(text):
            minutes = int(CODE_TTL.total_seconds() // 60)
            dispatcher.utter_message(
                text=say("registration.code_unprompted", minutes=minutes)
            )
        else:
            dispatcher.utter_message(response="utter_inform_unprompted")
        return []
