"""The turn an action runs in: its idempotency key.

The gateway sends each message (people's and internal events alike) to Rasa
with its inbox id as ``metadata["idempotency_key"]``; every action with a side
effect passes it to the desk, whose effect ledger (`bot.effects`) makes a turn
repeated after a crash replay the first run's outcome instead of acting again.
Rasa's REST channel and ``make shell`` send no key: the effects run as usual.
"""

from __future__ import annotations

from rasa_sdk import Tracker

KEY = "idempotency_key"
KEY_MAX = 64


def turn_key(tracker: Tracker) -> str | None:
    """The idempotency key of the message this action answers, if any."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    value = metadata.get(KEY) if isinstance(metadata, dict) else None
    if value is None:
        return None
    key = str(value).strip()
    return key if 0 < len(key) <= KEY_MAX else None
