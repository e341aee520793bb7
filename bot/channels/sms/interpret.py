"""What an inbound SMS means: opt-out keywords, next page, menu numbers, text.

Rules, in order:
- The whole message (case, spaces and punctuation ignored) is an opt-out
  keyword (:data:`OPT_OUT_KEYWORDS`): the number is opted out and gets one
  confirmation; nothing else is sent to it until it opts in again.
- While opted out, only :data:`OPT_IN_KEYWORDS` (MULAI, START, UNSTOP) count:
  they opt in again and get a short welcome back; every other message is
  stored but not answered. When not opted out, these words go to Rasa as text.
  "YES"/"YA" is never an opt-in: it is an ordinary answer.
- The next-page key ("9", or "0" beside a menu of 9+ options) with pages
  pending sends the next page, without Rasa.
- A bare number of the pending menu sends that button's payload to Rasa
  (intent syntax allowed: the assistant sent it). A number outside the menu
  is ordinary text.
- Anything else goes to Rasa with a leading "/" neutralised (nothing at all when
  nothing is left, e.g. "/"); it drops pages still pending. An MMS picture goes
  as ``/inform{"photo_url": ...}`` with the event in the metadata.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.channels.base import InboundMessage, Interpretation, neutralise_command
from bot.channels.sms.render import more_key, sms_body
from bot.policy.catalogue import module_texts, say

# CANCEL/END/QUIT are left out on purpose: people type "cancel" to leave a
# questionnaire, which must not silence the number for good.
OPT_OUT_KEYWORDS = frozenset({"STOP", "BERHENTI", "STOPALL", "UNSUBSCRIBE"})
OPT_IN_KEYWORDS = frozenset({"MULAI", "START", "UNSTOP"})

__getattr__ = module_texts(
    {"OPTED_OUT_TEXT": "sms.opted_out", "OPTED_IN_TEXT": "sms.opted_in"}
)

_NOT_LETTERS = re.compile(r"[^A-Z0-9]")
_MENU_NUMBER = re.compile(r"(\d{1,2})[.)]?")


def keyword(text: str) -> str:
    """The message as a keyword: upper case, letters and digits only."""
    return _NOT_LETTERS.sub("", text.upper())


def _without(state: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in state.items() if key not in keys}


def _photo_text(event: dict[str, Any]) -> str:
    entity = {"photo_url": event.get("url", "")}
    return "/inform" + json.dumps(entity, ensure_ascii=True)


def interpret_sms(
    message: InboundMessage, state: dict[str, Any], opted_out: bool
) -> Interpretation:
    """Decide what one stored inbound SMS means, given the conversation state."""
    text = message.text.strip()
    word = keyword(text)
    if word in OPT_OUT_KEYWORDS:
        if opted_out:
            return Interpretation(rasa_text=None, state=dict(state))
        return Interpretation(
            rasa_text=None,
            local_bodies=[sms_body(say("sms.opted_out"))],
            state=_without(state, "menu", "pages"),
            opted_out=True,
        )
    if opted_out:
        if word in OPT_IN_KEYWORDS:
            return Interpretation(
                rasa_text=None,
                local_bodies=[sms_body(say("sms.opted_in"))],
                state=_without(state, "menu", "pages"),
                opted_out=False,
            )
        return Interpretation(rasa_text=None, state=dict(state))

    menu: list[str] = list(state.get("menu") or [])
    pages: list[str] = list(state.get("pages") or [])
    if pages and text == more_key(menu):
        rest = _without(state, "pages")
        if pages[1:]:
            rest["pages"] = pages[1:]
        return Interpretation(
            rasa_text=None, local_bodies=[sms_body(pages[0])], state=rest
        )
    if message.payload is not None and message.payload in menu:
        return Interpretation(
            rasa_text=message.payload, state=_without(state, "menu", "pages")
        )
    number = _MENU_NUMBER.fullmatch(text)
    if number and 1 <= int(number.group(1)) <= len(menu):
        return Interpretation(
            rasa_text=menu[int(number.group(1)) - 1],
            state=_without(state, "menu", "pages"),
        )
    after = _without(state, "pages")
    if message.event and message.event.get("type") == "photo":
        return Interpretation(
            rasa_text=_photo_text(message.event),
            rasa_metadata={"event": dict(message.event)},
            state=after,
        )
    # "/" alone (or slashes and spaces) neutralises to nothing: Rasa gets nothing.
    return Interpretation(rasa_text=neutralise_command(text, menu) or None, state=after)
