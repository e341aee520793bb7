"""What a person can type while waiting for, or talking with, an agent.

Only one thing: go back to the assistant. "batal", "kembali ke bot", "selesai"
or "cancel" (any case, surrounding spaces and a final "." or "!" ignored), or
the payload of the assistant's own cancel button (`/handoff_cancel`, which the
channels pass on only when the assistant sent that button).
"""

from __future__ import annotations

CANCEL_WORDS = frozenset({"batal", "kembali ke bot", "selesai", "cancel"})
CANCEL_PAYLOAD = "/handoff_cancel"


def is_cancel_command(text: str | None) -> bool:
    """Whether the message (as the channel interpreted it) cancels the handoff."""
    if not text:
        return False
    stripped = text.strip()
    if stripped == CANCEL_PAYLOAD:
        return True
    words = " ".join(stripped.lower().rstrip(".! ").split())
    return words in CANCEL_WORDS
