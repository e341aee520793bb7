"""Turn one assistant turn into SMS bodies for feature phones.

Rules:
- The turn's texts are joined (one line break between replies) and converted to
  GSM-7; images are dropped (a feature phone cannot show them).
- Every button of the turn becomes a line of one numbered menu ("1. Ya"),
  followed by the hint ``sms.menu_hint``; ``state["menu"]`` holds the payloads in menu
  order, so "1" maps back to the first button.
- A body is at most :data:`MAX_SEGMENTS` GSM-7 segments. Longer content is
  paged at line, sentence or word boundaries: only the first page is sent, it
  ends with "(balas 9 untuk lanjut)", and the other pages wait in
  ``state["pages"]`` until the person replies 9. The menu always sits whole on
  the last page (with as much of the last text as fits beside it).
- The "next page" key is "9", or "0" when the menu has 9 or more options, so
  it never collides with a menu number (menus are numbered from 1).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.channels.base import Reply
from bot.channels.sms.gsm7 import segment_info, to_gsm7
from bot.policy.catalogue import module_texts, say

MAX_SEGMENTS = 2
__getattr__ = module_texts({"MENU_HINT": "sms.menu_hint"})
MORE_KEY, MORE_KEY_LONG_MENU = "9", "0"

_BLANK_LINES = re.compile(r"\n{3,}")
_SENTENCE_END = re.compile(r"[.!?:;)](?= )")


def sms_body(text: str) -> dict[str, Any]:
    """A stored outbox body for the SMS channel."""
    return {"kind": "sms", "text": text}


def more_key(menu: list[str]) -> str:
    """The reply that asks for the next page, given the pending menu."""
    return MORE_KEY_LONG_MENU if len(menu) >= int(MORE_KEY) else MORE_KEY


def fits(text: str) -> bool:
    """Whether ``text`` goes out as GSM-7 in at most two segments."""
    info = segment_info(text)
    return info.encoding == "GSM-7" and info.segments <= MAX_SEGMENTS


def clean_text(text: str) -> str:
    """GSM-7 text with normalised line breaks and at most one blank line."""
    gsm = to_gsm7(text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.strip() for line in gsm.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _join(*parts: str) -> str:
    return "\n".join(part for part in parts if part)


def _longest_prefix(text: str, accepts: Callable[[str], bool]) -> int:
    """The largest n such that ``accepts(text[:n])`` (monotone in n)."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if accepts(text[:middle]):
            low = middle
        else:
            high = middle - 1
    return low


def _cut(text: str, limit: int) -> tuple[str, str]:
    """Split ``text`` at the best boundary at or before ``limit`` characters.

    Prefers a line break, then a sentence end, in the second half of the
    window; then the last space; a word longer than a page is cut hard.
    """
    if limit >= len(text):
        return text, ""
    window = text[: limit + 1]
    half = limit // 2
    newline = window.rfind("\n")
    if newline >= half:
        return text[:newline].rstrip(), text[newline + 1 :].lstrip()
    ends = [match.end() for match in _SENTENCE_END.finditer(window)]
    if ends and ends[-1] >= half:
        return text[: ends[-1]].rstrip(), text[ends[-1] :].lstrip()
    space = window.rfind(" ")
    if space > 0:
        return text[:space].rstrip(), text[space + 1 :].lstrip()
    return text[:limit], text[limit:].lstrip()


def _tail_for_menu(text: str, menu: str) -> tuple[str, str]:
    """Split ``text`` so that its end fits on the last page beside the menu.

    Used when the rest fits on a page alone but not together with the menu, so
    the question that goes with the menu stays with it: the earliest line break
    that works, else the earliest sentence end; else the menu stands alone.
    """
    line_breaks = [(i, i + 1) for i, char in enumerate(text) if char == "\n"]
    sentence_ends = [(m.end(), m.end() + 1) for m in _SENTENCE_END.finditer(text)]
    for head_end, tail_start in line_breaks + sentence_ends:
        head, tail = text[:head_end].rstrip(), text[tail_start:].lstrip()
        if head and fits(_join(tail, menu)):
            return head, tail
    return text, ""


def paginate(content: str, menu: str, key: str) -> list[str]:
    """Pages of at most two segments; all but the last end with the more-hint."""
    more = say("sms.more", key=key)
    if not fits(menu):
        content, menu = _join(content, menu), ""
    pages: list[str] = []
    rest = content
    while not fits(_join(rest, menu)):
        limit = _longest_prefix(rest, lambda head: fits(_join(head, more)))
        if limit >= len(rest) and menu:
            head, rest = _tail_for_menu(rest, menu)
        else:
            head, rest = _cut(rest, max(limit, 1))
        if head:
            pages.append(_join(head, more))
    pages.append(_join(rest, menu))
    return pages


def menu_block(buttons: list[tuple[str, str]]) -> str:
    """Numbered menu lines and the hint, from (title, payload) pairs."""
    lines = [
        f"{number}. {' '.join(clean_text(title).split())}"
        for number, (title, _) in enumerate(buttons, start=1)
    ]
    return _join(*lines, say("sms.menu_hint")) if lines else ""


def render_sms(
    replies: list[Reply], state: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Bodies to send now and the new state (menu payloads, pending pages)."""
    new_state = dict(state)
    if not replies:
        return [], new_state
    buttons = [(button.title, button.payload) for r in replies for button in r.buttons]
    payloads = [payload for _, payload in buttons]
    content = "\n".join(text for r in replies if (text := clean_text(r.text)))
    pages = paginate(content, menu_block(buttons), more_key(payloads))
    new_state.pop("menu", None)
    new_state.pop("pages", None)
    if payloads:
        new_state["menu"] = payloads
    if len(pages) > 1:
        new_state["pages"] = pages[1:]
    bodies = [sms_body(pages[0])] if pages[0] else []
    return bodies, new_state
