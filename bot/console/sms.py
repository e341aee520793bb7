"""How an agent's reply will travel as SMS: encoding, segments, pages.

The estimate runs the reply through the SMS channel's own renderer
(`bot.channels.sms.render.render_sms`), so what the agent sees while typing is
exactly what the person's phone will get: text outside GSM-7 converted (curly
quotes straightened, accents and emoji dropped), and a long reply split into
pages of at most two segments, the person replying 9 for the next one.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.channels.base import Reply
from bot.channels.sms.gsm7 import (
    GSM7,
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    is_gsm7,
    segment_info,
)
from bot.channels.sms.render import render_sms

MAX_REPLY_LENGTH = 1600
"""Characters in one agent reply (SMS pages it; Telegram takes 4096)."""


@dataclass(frozen=True)
class SmsEstimate:
    """The reply as typed and as it will be sent."""

    typed_encoding: str
    typed_segments: int
    typed_units: int
    replaced: tuple[str, ...]
    """Characters GSM-7 cannot carry (converted or dropped when sent)."""
    segments: int
    """Segments actually sent (GSM-7, all pages)."""
    pages: int
    """Messages sent: more than one when the reply is paged."""

    @property
    def label(self) -> str:
        """One line for the agent, in Indonesian."""
        if self.typed_units == 0:
            return "SMS: 0 karakter"
        parts = [
            f"{self.typed_encoding}: {self.typed_segments} SMS "
            f"({self.typed_units}/{self.capacity_for_typed()} karakter)"
        ]
        if self.replaced:
            shown = " ".join(self.replaced[:10])
            parts.append(
                f"dikirim sebagai GSM-7, {self.segments} SMS; karakter ini diganti "
                f"atau dihapus: {shown}"
            )
        if self.pages > 1:
            parts.append(
                f"terlalu panjang: dikirim dalam {self.pages} bagian, penerima "
                "membalas 9 untuk bagian berikutnya"
            )
        return "; ".join(parts)

    def capacity_for_typed(self) -> int:
        """Units that fit in the typed text's segment count."""
        if self.typed_encoding == GSM7:
            single, part = GSM7_SINGLE, GSM7_PART
        else:
            single, part = UCS2_SINGLE, UCS2_PART
        return single if self.typed_segments <= 1 else part * self.typed_segments


def estimate(text: str) -> SmsEstimate:
    """Encoding and segments of `text` as typed, and as the channel sends it."""
    typed = segment_info(text)
    replaced = tuple(dict.fromkeys(char for char in text if not is_gsm7(char)))
    bodies, state = render_sms([Reply(text)], {}) if text.strip() else ([], {})
    pages = [str(body.get("text", "")) for body in bodies] + [
        str(page) for page in state.get("pages", [])
    ]
    return SmsEstimate(
        typed_encoding=typed.encoding,
        typed_segments=typed.segments,
        typed_units=typed.units,
        replaced=replaced,
        segments=sum(segment_info(page).segments for page in pages),
        pages=len(pages),
    )
