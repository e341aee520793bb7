"""Personal data in the actions: Rasa holds only the gateway's tokens.

The gateway hands Rasa a person's text with NIK, KK, phone, birth date and
e-mail replaced by tokens (`bot.privacy.vault`); validators reveal the typed
text before they validate it, and keep what they accepted in slots as new
tokens, revealed again where it is used. Outside the gateway (no conversation
behind the sender id) nothing is kept: the slot stays empty.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rasa_sdk import Tracker

from actions.services import services
from bot.privacy.vault import TOKEN_PATTERN


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


async def reveal(tracker: Tracker, value: Any) -> str:
    """`value` as the person typed it (its tokens revealed), stripped. Text
    without tokens needs no database (e.g. the eligibility check over Rasa's
    REST channel)."""
    text = _text(value)
    if not TOKEN_PATTERN.search(text):
        return text
    return await asyncio.to_thread(services().vault.reveal, tracker.sender_id, text)


async def revealed_slot(tracker: Tracker, slot: str) -> str:
    """A slot kept as a token, revealed ("" when empty)."""
    return await reveal(tracker, tracker.get_slot(slot))


async def keep(tracker: Tracker, kind: str, value: str) -> str | None:
    """A token standing for a validated `value`, for a slot (None outside the
    gateway)."""
    return await asyncio.to_thread(
        services().vault.keep, tracker.sender_id, kind, value
    )
