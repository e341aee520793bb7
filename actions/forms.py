"""What every form validator of the assistant shares: media are never answers,
unclear answers are counted (the second in a row also offers a person), and an
opening does not take what an earlier attempt left as answers."""

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Dict, List, Sequence

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

    started_afresh: ClassVar[Sequence[str]] = ()
    """Slots the form's opening forgets: Rasa carries a session's slots over to
    the next, so an attempt cut by the session's end leaves its answers (and
    a code that is dead by the time the form opens again)."""

    @abstractmethod
    def name(self) -> str:
        """Each form names its validator."""

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Dict[str, Any]]:
        """A photo or contact is acknowledged, never taken as an answer; the
        opening forgets `started_afresh`."""
        kind = media_kind(tracker)
        if kind:
            dispatcher.utter_message(text=media_text(kind, load_policy()))
            return [SlotSet(slot, None) for slot in tracker.slots_to_validate()]
        forgotten: List[Dict[str, Any]] = []
        if self.started_afresh and opens(tracker):
            forgotten = [
                SlotSet(slot, None)
                for slot in self.started_afresh
                if tracker.get_slot(slot) is not None
            ]
            keep_handed_over(tracker, forgotten)
        return [*forgotten, *await super().run(dispatcher, tracker, domain)]


def opens(tracker: Tracker) -> bool:
    """Whether this validation is the form's opening: Rasa opens the loop for
    the message that triggered it (the loop's trigger is the latest message)
    and calls the validator with the answers kept from before; when that call
    returns nothing, Rasa 3.6 calls it again in the same turn on the tracker of
    before the opening (no loop yet: not an opening). `requested_slot` may
    still name an earlier question then (a session that expired mid-form, the
    link form left for this one), so it tells nothing."""
    trigger = (tracker.active_loop or {}).get("trigger_message") or {}
    latest = (tracker.latest_message or {}).get("message_id")
    return latest is not None and trigger.get("message_id") == latest


def keep_handed_over(tracker: Tracker, cleared: List[Dict[str, Any]]) -> None:
    """At the opening Rasa hands the answers kept from before over again, at
    the end of the events, as answers to validate. They were validated when
    given (a consent kept as True is no text to read; an e-mail would be mailed
    again), so none is validated again; the cleared ones are gone."""
    tracker.slots.update(dict.fromkeys(event["name"] for event in cleared))
    kept = len(tracker.events)
    while kept and tracker.events[kept - 1].get("event") == "slot":
        kept -= 1
    tracker.events = tracker.events[:kept]


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
