"""GSM 03.38 (GSM-7) text for feature phones: conversion and segment counting.

A message that uses only the GSM-7 default alphabet and its extension table is
sent in septets (160 in a single SMS, 153 per part of a concatenated one; an
extension character costs two septets, an escape and the character). Anything
else forces UCS-2 for the whole message (70 UTF-16 code units single, 67 per
part), which more than halves what fits and breaks on some handsets, so replies
go through :func:`to_gsm7` first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# GSM 03.38 default alphabet (one septet each) and extension table (two septets).
GSM7_BASIC = frozenset(
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\u00c6\u00e6\u00df"
    "\u00c9 !\"#\u00a4%&'()*+,-./0123456789:;<=>?\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "\u00c4\u00d6\u00d1\u00dc\u00a7\u00bfabcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1"
    "\u00fc\u00e0"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|\u20ac\f")

_NOT_GSM7 = re.compile(
    "[^" + "".join(re.escape(c) for c in sorted(GSM7_BASIC | GSM7_EXTENSION)) + "]"
)
"""A character outside both tables: one C-level scan instead of a lookup a
character (segment counting runs in a binary search over every SMS reply)."""
_EXTENSION = re.compile(
    "[" + "".join(re.escape(c) for c in sorted(GSM7_EXTENSION)) + "]"
)

GSM7 = "GSM-7"
UCS2 = "UCS-2"
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

# Replacements tried before Unicode decomposition. Emoji and pictographs not
# listed here are dropped; the few with a common meaning get a short ASCII form
# (check marks "v", crosses "x", arrows "->").
_REPLACEMENTS: dict[str, str] = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2035`\u00b4\u2039\u203a", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58", "-"),
    **dict.fromkeys("\u00a0\u2007\u202f\u205f\u3000\t\u2028\u2029", " "),
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\u00ad\ufe0e\ufe0f", ""),
    **dict.fromkeys("\u2022\u25cf\u25aa\u25ab\u25e6\u2023\u2219\u00b7", "-"),
    **dict.fromkeys("\u2713\u2714\u2705\u2611\u2610", "v"),
    **dict.fromkeys("\u2717\u2718\u274c\u274e\u2716\u00d7", "x"),
    **dict.fromkeys("\u2192\u27a1\u21d2\u2794\u279c", "->"),
    **dict.fromkeys("\u2190\u2b05\u21d0", "<-"),
    "\u2026": "...",
    "\u0131": "i",
    "\u0142": "l",
    "\u0141": "L",
    "\u0111": "d",
    "\u0110": "D",
    "\u0153": "oe",
    "\u0152": "OE",
    "\u00f7": ":",
    "\u2044": "/",
    "\u00b0": "",
    "\u00a9": "(c)",
    "\u00ae": "(R)",
    "\u2122": "TM",
    "\u00bd": "1/2",
    "\u00bc": "1/4",
    "\u00be": "3/4",
    "\u2248": "~",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2260": "!=",
}
_SPACES = re.compile(r" {2,}")
_LINE_END_SPACES = re.compile(r"^ +| +$", re.MULTILINE)


def _char_cost(char: str) -> int | None:
    """Septets of one character, or None if GSM-7 cannot carry it."""
    if char in GSM7_BASIC:
        return 1
    if char in GSM7_EXTENSION:
        return 2
    return None


def is_gsm7(text: str) -> bool:
    """Whether every character is in the GSM-7 basic or extension table."""
    return _NOT_GSM7.search(text) is None


def _convert_char(char: str) -> str:
    """The GSM-7 stand-in for one character ("" when there is none)."""
    if _char_cost(char) is not None:
        return char
    if char in _REPLACEMENTS:
        return _REPLACEMENTS[char]
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(
        _REPLACEMENTS.get(part, part)
        for part in decomposed
        if not unicodedata.combining(part)
    )
    return kept if kept and is_gsm7(kept) else ""


def to_gsm7(text: str) -> str:
    """Rewrite ``text`` with GSM-7 characters only.

    Curly quotes become straight, dashes "-", the ellipsis "...", odd spaces a
    plain space; letters outside GSM-7 lose their accents (NFKD: "ā" -> "a",
    "ﬁ" -> "fi"); check marks become "v", crosses "x", arrows "->"; other emoji
    and symbols are removed. Runs of spaces left behind collapse into one, and
    spaces at the start or end of a line are dropped. Text already in GSM-7 is
    returned as is.
    """
    if is_gsm7(text):
        return text
    converted = "".join(_convert_char(char) for char in text)
    converted = _SPACES.sub(" ", converted)
    return _LINE_END_SPACES.sub("", converted)


@dataclass(frozen=True)
class SegmentInfo:
    """How a text travels as SMS: encoding, number of parts, and its length.

    ``units`` is septets for GSM-7 (extension characters count 2) and UTF-16
    code units for UCS-2 (characters outside the BMP count 2).
    """

    encoding: str
    segments: int
    units: int


def _segments(costs: list[int], single: int, part: int) -> int:
    """Parts needed; a multi-unit character is never split across parts."""
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments, used = segments + 1, 0
        used += cost
    return segments


def segment_info(text: str) -> SegmentInfo:
    """Encoding, segment count and length of ``text`` as one SMS message.

    An empty text has 0 segments. Over 160 septets (70 UCS-2 units) a message is
    split into parts of 153 (67), without splitting an escape sequence or a
    surrogate pair, as handsets and Twilio do.
    """
    if is_gsm7(text):
        extended = len(_EXTENSION.findall(text))
        septets = len(text) + extended
        if extended and septets > GSM7_SINGLE:  # no escape split across parts
            costs = [_char_cost(char) or 0 for char in text]
            segments = _segments(costs, GSM7_SINGLE, GSM7_PART)
        elif septets <= GSM7_SINGLE:
            segments = 1 if septets else 0
        else:
            segments = -(-septets // GSM7_PART)
        return SegmentInfo(GSM7, segments, septets)
    costs = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return SegmentInfo(UCS2, _segments(costs, UCS2_SINGLE, UCS2_PART), sum(costs))
