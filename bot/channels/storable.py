"""Values the gateway can store as given, on SQLite and on PostgreSQL.

PostgreSQL refuses NUL in text and in JSONB, no database takes a lone surrogate
(it is not UTF-8), and ids and addresses must fit their columns. No provider sends
such values, so a webhook carrying them is acknowledged and ignored, the simulator
refuses them, and the console login refuses such a name before any query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.channels.base import InboundMessage

MAX_KEY_LENGTH = 128
"""Longest provider id, address or user name the inbox columns hold."""


def storable_text(text: str) -> bool:
    """A string with no NUL that is valid UTF-8 (no lone surrogate)."""
    if not isinstance(text, str) or "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_value(value: Any) -> bool:
    """Every string in a JSON-like value (keys included) is storable text."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, Mapping):
        return all(
            storable_value(key) and storable_value(item) for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return all(storable_value(item) for item in value)
    return True


def storable_key(value: str | None, limit: int = MAX_KEY_LENGTH) -> bool:
    """A short storable string (or None): an id, an address, a name."""
    return value is None or (storable_text(value) and len(value) <= limit)


def storable_message(message: InboundMessage) -> bool:
    """The inbox can store this message as it is."""
    return (
        storable_key(message.provider_id)
        and storable_key(message.address)
        and storable_key(message.user_name)
        and storable_text(message.text)
        and (message.payload is None or storable_text(message.payload))
        and storable_value(message.event)
    )
