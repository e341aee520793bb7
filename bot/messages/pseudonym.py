"""Pseudonymous conversation ids: what Rasa and the logs see instead of an address."""

from __future__ import annotations

import hashlib
import hmac


def pseudonym(key: str, channel: str, address: str) -> str:
    """HMAC-SHA256 of channel and address under the secret key, as 64 hex digits."""
    if not key:
        raise ValueError("the pseudonym key is empty")
    message = f"{channel}\x00{address}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
