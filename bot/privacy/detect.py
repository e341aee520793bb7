"""Where personal data sits in free text, found with the parsers' own rules.

One detector for every place that must not show or keep it in clear: the
console's transcript masks the spans, the gateway swaps them for tokens before
Rasa sees the text. A span is what `validate_nik`, `validate_kk`,
`normalize_phone` or `parse_date` would accept, written with any run of spaces,
tabs, line breaks, dots, dashes, slashes or parentheses between its digit groups
(the validators strip such separators, so people type them freely), plus e-mail
addresses and any other run of 10 or more digits (a mistyped NIK is still one).
Dates are any the date parser reads, also with a month name (`15 Agt 1990`):
free text cannot tell a birth date from another date, so every one is masked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bot.policy.validation import (
    MONTHS,
    mask_email,
    mask_nik,
    mask_phone,
    normalize_phone,
    parse_date,
    validate_kk,
    validate_nik,
)

NIK = "nik"
KK = "kk"
PHONE = "phone"
DATE = "date"
EMAIL = "email"
NUMBER = "number"  # 10 or more digits no parser accepts (a mistyped NIK or KK)

MASKED_DATE = "**-**-****"
_MIN_NUMBER_DIGITS = 10
# The longest value made of digits: a NIK or KK number (16); a phone number
# with its country code has at most 14.
_MAX_DIGITS = 16

EMAIL_PATTERN = re.compile(r"[\w.+\-%]+@[\w\-]+(?:\.[\w\-]+)+")
# Digit groups separated by runs of what people put between them.
_RUN = re.compile(r"\+?\d+(?:[\s.\-/()]+\d+)*")
_GROUP = re.compile(r"\d+")
_NAMED_DATE = re.compile(
    r"(?<![a-z0-9])(\d{1,2})[\s\-/.,]*([a-z]{3,9})\.?[\s\-/.,]*(\d{4}|\d{2})(?!\d)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Span:
    """One piece of personal data: `text[start:end]`, its kind and its value
    as the parser reads it (digits, +62 number, ISO date, lower-case e-mail)."""

    kind: str
    start: int
    end: int
    value: str


def _date_of(groups: list[str]) -> str | None:
    """The ISO date that 1 (DDMMYYYY) or 3 digit groups stand for, read by
    `parse_date` itself; None when they are not a date."""
    if len(groups) == 1:
        text = groups[0] if len(groups[0]) == 8 else ""
    elif len(groups) == 3:
        lengths = tuple(len(group) for group in groups)
        day_first = lengths[0] <= 2 and lengths[1] <= 2 and lengths[2] in (2, 4)
        year_first = lengths[0] == 4 and lengths[1] <= 2 and lengths[2] <= 2
        text = "-".join(groups) if day_first or year_first else ""
    else:
        text = ""
    parsed = parse_date(text) if text else None
    return parsed.isoformat() if parsed else None


def _classify(groups: list[str], plus: bool) -> tuple[str, str] | None:
    """(kind, value) of consecutive digit groups as one value, or None."""
    digits = "".join(groups)
    if len(digits) == 16:
        if validate_nik(digits).valid:
            return NIK, digits
        if validate_kk(digits).valid:
            return KK, digits
    phone = normalize_phone(("+" if plus else "") + digits)
    if phone is not None:
        return PHONE, phone
    day = _date_of(groups)
    if day is not None:
        return DATE, day
    return None


def _number_spans(
    text: str, start: int, end: int, plus: bool
) -> Iterator[tuple[str, int, int, str]]:
    """Spans inside one run of digit groups: at each group the longest stretch
    of groups a parser accepts; leftovers of 10+ digits are a NUMBER."""
    groups = [
        (start + m.start(), start + m.end()) for m in _GROUP.finditer(text[start:end])
    ]
    leftover: list[tuple[int, int]] = []

    def flush() -> Iterator[tuple[str, int, int, str]]:
        digits = "".join(text[a:b] for a, b in leftover)
        if len(digits) >= _MIN_NUMBER_DIGITS:
            yield NUMBER, leftover[0][0], leftover[-1][1], digits
        leftover.clear()

    i = 0
    while i < len(groups):
        found = None
        total = 0
        last = i
        while last < len(groups) and total <= _MAX_DIGITS:
            total += groups[last][1] - groups[last][0]
            last += 1
        for j in range(last - 1, i - 1, -1):
            parts = [text[a:b] for a, b in groups[i : j + 1]]
            if len("".join(parts)) > _MAX_DIGITS:
                continue
            kind_value = _classify(parts, plus and i == 0)
            if kind_value is not None:
                found = (j, kind_value)
                break
        if found is None:
            leftover.append(groups[i])
            i += 1
            continue
        yield from flush()
        j, (kind, value) = found
        begin = start if plus and i == 0 and kind == PHONE else groups[i][0]
        if kind == PHONE and begin > 0 and text[begin - 1] == "(":
            begin -= 1  # "(0812) 3456-7890": the area code's bracket goes too
        yield kind, begin, groups[j][1], value
        i = j + 1
    yield from flush()


def find_personal_data(text: str) -> list[Span]:
    """Every span of personal data in `text`, in order, none overlapping."""
    spans: list[Span] = []
    taken = [False] * len(text)

    def take(kind: str, start: int, end: int, value: str) -> None:
        if any(taken[start:end]):
            return
        taken[start:end] = [True] * (end - start)
        spans.append(Span(kind, start, end, value))

    for match in EMAIL_PATTERN.finditer(text):
        take(EMAIL, match.start(), match.end(), match.group().lower())
    for match in _NAMED_DATE.finditer(text):
        parsed = parse_date(match.group())
        if match.group(2).lower() in MONTHS and parsed is not None:
            take(DATE, match.start(), match.end(), parsed.isoformat())
    for run in _RUN.finditer(text):
        plus = run.group().startswith("+")
        for piece_start, piece_end in _free_pieces(taken, run.start(), run.end()):
            piece_plus = plus and piece_start == run.start()
            for kind, start, end, value in _number_spans(
                text, piece_start, piece_end, piece_plus
            ):
                take(kind, start, end, value)
    return sorted(spans, key=lambda span: span.start)


def _free_pieces(taken: list[bool], start: int, end: int) -> Iterator[tuple[int, int]]:
    """The stretches of [start, end) not already taken by another span."""
    piece = None
    for index in range(start, end):
        if taken[index]:
            if piece is not None:
                yield piece, index
                piece = None
        elif piece is None:
            piece = index
    if piece is not None:
        yield piece, end


def _masked(span: Span, original: str) -> str:
    """How the console shows one span."""
    if span.kind == EMAIL:
        return mask_email(original)
    if span.kind == PHONE:
        return mask_phone(span.value)
    if span.kind == DATE:
        return MASKED_DATE
    return mask_nik(span.value)


def replace_personal_data(text: str, replace: Callable[[Span, str], str]) -> str:
    """`text` with each span replaced by `replace(span, its original text)`."""
    pieces: list[str] = []
    cursor = 0
    for span in find_personal_data(text):
        pieces.append(text[cursor : span.start])
        pieces.append(replace(span, text[span.start : span.end]))
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def mask_personal_data(text: str) -> str:
    """`text` with every span of personal data masked: `3174********0001`,
    `+62812*****890`, `bu***@example.com`, `**-**-****`."""
    return replace_personal_data(text, _masked)
