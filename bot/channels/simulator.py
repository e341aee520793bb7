"""The simulator: a person chatting as a Telegram or SMS user from a web page.

Simulated messages go through the real channel (TelegramChannel or SmsChannel) and
the whole gateway pipeline; only the last step differs: `SimulatorSender` "delivers"
a body by accepting it, and the simulator page reads it back from the outbox. This
module builds the inbound messages the page sends and describes stored bodies the
way each channel's screen would show them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from bot.channels.base import (
    CHANNELS,
    SMS,
    TELEGRAM,
    InboundMessage,
    LookupResult,
    SendResult,
)
from bot.channels.sms.gsm7 import segment_info
from bot.channels.storable import storable_text

SIMULATOR = "simulator"
ADDRESS_PREFIX = "sim:"
MAX_USER_LENGTH = 40
MAX_TEXT_LENGTH = 1600


class SimulatorError(ValueError):
    """The page sent something a real channel could not have sent."""


class SimulatorSender:
    """Delivers bodies of simulated conversations: accepts them at once."""

    channel = SIMULATOR
    request_in_flight = 0.0
    """Sends are calls in this process: none can be on its way."""

    async def send(self, address: str, body: dict[str, Any]) -> SendResult:
        """Accept the body; the simulator page shows it from the outbox."""
        return SendResult(ok=True, provider_message_id=f"sim-{uuid.uuid4().hex}")

    async def lookup(
        self,
        address: str,
        body: dict[str, Any],
        since: datetime,
        after: str | None = None,
    ) -> LookupResult:
        """Nothing: the page shows only rows stored as delivered, so a send whose
        result was not stored never reached it (send it again)."""
        return LookupResult()


def address_of(user: str) -> str:
    """The stored address of a simulated user (never a real chat id or number)."""
    return ADDRESS_PREFIX + user


def check_user(user: object) -> str:
    """The user's name or number, trimmed; SimulatorError when unusable."""
    if not isinstance(user, str) or not user.strip():
        raise SimulatorError("nama atau nomor belum diisi")
    user = user.strip()
    if (
        len(user) > MAX_USER_LENGTH
        or any(ord(char) < 32 for char in user)
        or not storable_text(user)
    ):
        raise SimulatorError("nama atau nomor terlalu panjang atau tidak valid")
    return user


def check_channel(channel: object) -> str:
    """The channel name; SimulatorError unless it is telegram or sms."""
    if channel not in CHANNELS:
        raise SimulatorError("kanal harus telegram atau sms")
    return str(channel)


def inbound(
    channel: str, user: str, text: str | None = None, payload: str | None = None
) -> InboundMessage:
    """The message a real channel would have parsed for this input.

    A Telegram button press becomes a callback (payload plus a callback event),
    as `bot.channels.telegram.parse_webhook` produces it. SMS has no buttons: the
    person types the menu number.
    """
    channel = check_channel(channel)
    user = check_user(user)
    common: dict[str, Any] = {
        "channel": channel,
        "provider_id": f"sim-{uuid.uuid4()}",
        "address": address_of(user),
        "simulated": True,
        "user_name": user,
    }
    if payload is not None:
        if channel != TELEGRAM:
            raise SimulatorError("SMS tidak punya tombol: ketik angka pilihannya")
        if (
            not isinstance(payload, str)
            or not payload
            or len(payload) > 256
            or not storable_text(payload)
        ):
            raise SimulatorError("payload tombol tidak valid")
        event = {"type": "callback", "callback_query_id": f"sim-{uuid.uuid4().hex}"}
        return InboundMessage(payload=payload, event=event, **common)
    if not isinstance(text, str) or not text.strip():
        raise SimulatorError("pesan masih kosong")
    if len(text) > MAX_TEXT_LENGTH:
        raise SimulatorError("pesan terlalu panjang")
    if not storable_text(text):
        raise SimulatorError("pesan berisi karakter yang tidak bisa dibaca")
    return InboundMessage(text=text, **common)


def segments(text: str) -> dict[str, Any]:
    """Encoding, segment count and length of an SMS text, for the page."""
    info = segment_info(text)
    return {"encoding": info.encoding, "segments": info.segments, "units": info.units}


def describe_bot_body(channel: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """What the person's screen shows for a stored body, or None if nothing.

    Telegram: text with inline button rows ({"title", "payload"}: the callback
    data the button sends back), or a short notice for an answered callback.
    SMS: the text with its encoding and segment count.
    """
    kind = body.get("kind")
    if channel == TELEGRAM and kind == "message":
        rows = [
            [
                {
                    "title": str(button.get("text", "")),
                    "payload": str(button.get("callback_data", "")),
                }
                for button in row
            ]
            for row in body.get("buttons") or []
        ]
        return {"text": str(body.get("text", "")), "buttons": rows}
    if channel == TELEGRAM and kind == "answer_callback":
        notice = body.get("text")
        return {"notice": str(notice)} if notice else None
    if channel == SMS and kind == "sms":
        text = str(body.get("text", ""))
        return {"text": text, "segments": segments(text)}
    return None


def describe_user_message(
    channel: str, text: str, payload: str | None
) -> dict[str, Any]:
    """What the person sent, as the page shows it (SMS with its segments)."""
    shown: dict[str, Any] = {"text": text, "payload": payload}
    if channel == SMS:
        shown["segments"] = segments(text)
    return shown
