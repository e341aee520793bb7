"""Rasa's response generator for the assistant: programme answers rendered in
Rasa itself, every other response from the domain as usual.

A programme question (`FAQ_INTENTS`) is answered by the response
`utter_answer_faq`, which this generator renders from the versioned policy
(`bot.policy.answers.render_answer`, the sub-topic read from the message's text),
so the most common turn needs no call to the action server: no request, no
tracker sent as JSON, nothing to fail there. Rasa loads it from the endpoints
file (`nlg: type: bot.rasa_nlg.ProgrammeAnswers`), its own way of plugging in a
generator; `bot.rasa_channel` refuses every turn without it (the gateway
retries, then apologizes), so a missing line cannot make the bot say the
domain's placeholder.

A message that only gives data outside a form gets `utter_inform_unprompted`,
a reminder not to send personal data unasked. When it is an e-mail code and
the person's registration waits at the code question outside its form (a
session that expired more than a day before, which `bot.rasa_session_resume`
does not reopen: the slots carry over; within a form, other questions are
answered and the form goes on, and BATAL forgets the answers), it says how to
go on instead; not once the answers' vault tokens have expired (a week
without a message), as the registration's e-mail is gone with them.
"""

from __future__ import annotations

import re
from typing import Any

from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.policy.answers import faq_answer
from bot.policy.catalogue import say
from bot.privacy.vault import TOKEN_TTL
from bot.registration import CODE_OK
from bot.registry.email_codes import CODE_DIGITS

FAQ_RESPONSE = "utter_answer_faq"
"""The response that answers a programme question."""
RENDERED = frozenset({FAQ_RESPONSE})
"""The responses rendered here: their text in domain.yml is never said."""
NOT_UNDERSTOOD = "utter_please_rephrase"
"""What the answer is when the latest message asked no programme question."""
NLG_TYPE = f"{__name__}.ProgrammeAnswers"
"""The `nlg` type of every endpoints file."""
UNPROMPTED = "utter_inform_unprompted"
"""The answer to data nobody asked for."""
_NUMBER = re.compile(r"\d+")
_INSIDE_A_NUMBER = re.compile(r"(?<=\d)[ .-](?=\d)")
"""A space, dot or dash between digits: "482 913" is one code."""
_SHORT = 40
"""Characters at most of a message that only gives a code ("kodenya 482913")."""


def is_paused_code(tracker: DialogueStateTracker) -> bool:
    """Whether the latest message gives an e-mail code while the registration
    waits for one outside its form."""
    message = tracker.latest_message
    text = (message.text or "").strip() if message else ""
    numbers = _NUMBER.findall(_INSIDE_A_NUMBER.sub("", text))
    return (
        len(text) <= _SHORT
        and len(numbers) == 1
        and len(numbers[0]) == CODE_DIGITS
        and bool(tracker.get_slot("reg_email"))
        and tracker.get_slot("reg_email_code") != CODE_OK
        and _quiet_for(tracker) < TOKEN_TTL.total_seconds()
    )


def _quiet_for(tracker: DialogueStateTracker) -> float:
    """Seconds between the person's latest message and the one before it."""
    said = [e.timestamp for e in tracker.events if isinstance(e, UserUttered)]
    return said[-1] - said[-2] if len(said) >= 2 else 0.0


class ProgrammeAnswers(TemplatedNaturalLanguageGenerator):
    """The domain's responses, and `utter_answer_faq` rendered from the policy."""

    def __init__(
        self,
        endpoint_config: EndpointConfig | None = None,
        domain: Domain | None = None,
    ) -> None:
        """Rasa's constructor for a generator named in the endpoints file."""
        super().__init__((domain or Domain.empty()).responses)

    async def generate(
        self,
        utter_action: str,
        tracker: DialogueStateTracker,
        output_channel: str,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        """The response `utter_action` for this tracker."""
        if utter_action == UNPROMPTED and is_paused_code(tracker):
            return {"text": say("registration.code_outside_form")}
        if utter_action != FAQ_RESPONSE:
            return await super().generate(
                utter_action, tracker, output_channel, **kwargs
            )
        message = tracker.latest_message
        intent = (message.intent or {}).get("name") if message else None
        answer = faq_answer(intent, (message.text or "") if message else "")
        if answer is None:
            return await super().generate(
                NOT_UNDERSTOOD, tracker, output_channel, **kwargs
            )
        return {"text": answer}
