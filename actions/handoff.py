"""Hand the conversation to a call-center agent.

A ticket with the reason code is opened in the conversation's name (the gateway
then keeps the person's messages for the agent instead of the bot) and the
person is told their place in the queue and the expected wait, or when agents
are back. Without a gateway conversation (REST shell) the call-center channels
are given instead. A request for the call center's number, e-mail or hours is
answered with them (and the offer of an agent) instead of a place in the queue.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.services import services
from actions.turn import turn_key
from bot.clock import now_wib
from bot.handoff.models import (
    REASON_COMPLAINT,
    REASON_REQUEST_HUMAN,
)
from bot.policy.answers import asks_for_contact, call_center_text, contact_answer
from bot.policy.catalogue import say
from bot.policy.programme import load_policy

REASON_FOR_INTENT = {"complaint": REASON_COMPLAINT}


async def hand_off(
    dispatcher: CollectingDispatcher, tracker: Tracker, reason: str
) -> List[EventType]:
    """Open the ticket and tell the person (a rule then leaves any form; its
    answers stay for later)."""
    handoff = await asyncio.to_thread(
        services().handoff.hand_off, tracker.sender_id, reason, turn_key(tracker)
    )
    if handoff is None:
        opening = say(f"handoff.no_ticket_openings.{reason}")
        parts = (opening, call_center_text(load_policy(), now_wib()))
    else:
        parts = (say(f"handoff.openings.{reason}"), handoff.text)
    dispatcher.utter_message(text=" ".join(part for part in parts if part))
    return []


class ActionHandoff(Action):
    """The person asked for a person, or complained."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False)
        text = tracker.latest_message.get("text") or ""
        if intent == "request_human" and asks_for_contact(text):
            # "nomor call center?" wants the number and hours, not the queue.
            dispatcher.utter_message(text=contact_answer(load_policy(), now_wib()))
            return []
        reason = REASON_FOR_INTENT.get(intent or "", REASON_REQUEST_HUMAN)
        return await hand_off(dispatcher, tracker, reason)
