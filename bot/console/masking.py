"""Personal data inside free text, masked for the console's transcript.

People type their NIK, KK number, phone and e-mail into the chat while they
register; the console shows these turns to every agent who may see the ticket,
so they are masked like the registration panel's fields (the clear values are
only in the panel's audited reveal). E-mail addresses become `bu***@domain`;
runs of 10 or more digits (single spaces, dots or dashes between them allowed,
as people type them) become a masked phone number when they are one, otherwise
keep only their first and last four digits (NIK and KK: `3174********0001`).
"""

from __future__ import annotations

import re

from bot.policy.validation import mask_email, mask_nik, mask_phone, normalize_phone

EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
LONG_NUMBER = re.compile(r"(?<![\d+])\+?\d(?:[ .\-]?\d){9,}(?!\d)")


def _mask_number(match: re.Match[str]) -> str:
    """A long number masked as a phone number, or as a NIK (first and last 4)."""
    number = match.group()
    if normalize_phone(number) is not None:
        return mask_phone(number)
    return mask_nik(number.lstrip("+"))


def mask_personal_data(text: str) -> str:
    """`text` with e-mail addresses and long numbers (NIK, KK, phone) masked."""
    masked = EMAIL.sub(lambda match: mask_email(match.group()), text)
    return LONG_NUMBER.sub(_mask_number, masked)
