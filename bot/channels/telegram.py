"""Telegram: parse webhook updates, render replies, send through the Bot API.

Inbound updates are authenticated by the secret token Telegram sends in
`X-Telegram-Bot-Api-Secret-Token` and parsed with python-telegram-bot's
`Update`. Replies become plain-text messages (no parse mode, so nothing a user
or the assistant writes can turn into markup) with inline keyboards; callback
data longer than Telegram's 64 bytes is replaced by a short key kept in the
conversation state. `TelegramSender` sends stored bodies with `telegram.Bot`,
paced by an in-process limiter, and maps Telegram's errors to `SendResult`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.channels.base import (
    TELEGRAM,
    InboundMessage,
    Interpretation,
    RenderedReplies,
    Reply,
    SendResult,
    Unauthorized,
    neutralise_command,
)
from bot.policy.validation import normalize_phone
from bot.settings import Settings

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
ALLOWED_UPDATES = ("message", "callback_query")

MAX_CALLBACK_BYTES = 64
MAX_TEXT_UNITS = 4096  # Telegram counts UTF-16 code units
KEY_PREFIX = "k:"
MAX_STORED_KEYS = 50
SHORT_TITLE = 12  # titles up to this length share a keyboard row
BUTTONS_PER_ROW = 3

START_TEXT = "halo"
CHOOSE_TEXT = "Silakan pilih:"
TEXT_NOT_OWN_CONTACT = (
    "Maaf, saya hanya bisa memakai nomor HP Anda sendiri. Tekan tombol bagikan "
    "kontak untuk nomor Anda, atau ketik nomor HP Anda."
)
TEXT_NOT_INDONESIAN = (
    "Maaf, nomor itu bukan nomor HP Indonesia. Silakan ketik nomor HP Anda, "
    "misalnya 0812xxxxxxxx."
)
TEXT_EXPIRED_BUTTON = "Pilihan ini sudah tidak berlaku."
TEXT_UNSUPPORTED = (
    "Maaf, saya hanya bisa membaca pesan teks, foto, dan kontak. "
    "Silakan ketik pesan Anda."
)


# --- Inbound ------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value, whatever the case of its name in the mapping."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None


def check_secret(settings: Settings, headers: Mapping[str, str]) -> None:
    """Raise Unauthorized unless the secret token header matches, in constant time."""
    expected = settings.telegram_secret_token
    given = _header(headers, SECRET_HEADER)
    if not expected or given is None:
        raise Unauthorized("missing Telegram secret token")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise Unauthorized("wrong Telegram secret token")


def _decode(body: bytes) -> Update:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("Telegram update is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise ValueError("Telegram update has no update_id")
    try:
        return Update.de_json(data, bot=None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError("Telegram update has an unexpected shape") from exc


def _message_event(message: Message) -> dict[str, Any] | None:
    """The non-text content of a message as an event, or None for plain text."""
    sender_id = message.from_user.id if message.from_user else None
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return {
            "type": "photo",
            "file_id": largest.file_id,
            "file_unique_id": largest.file_unique_id,
            "width": largest.width,
            "height": largest.height,
            "file_size": largest.file_size,
            "sender_id": sender_id,
        }
    document = message.document
    if document and (document.mime_type or "").startswith("image/"):
        return {
            "type": "photo",
            "source": "document",
            "file_id": document.file_id,
            "file_unique_id": document.file_unique_id,
            "mime_type": document.mime_type,
            "file_size": document.file_size,
            "sender_id": sender_id,
        }
    if message.contact:
        return {
            "type": "contact",
            "phone_number": message.contact.phone_number,
            "user_id": message.contact.user_id,
            "first_name": message.contact.first_name,
            "sender_id": sender_id,
        }
    if message.text is None and message.caption is None:
        return {"type": "unsupported", "sender_id": sender_id}
    return None


def parse_webhook(
    settings: Settings, headers: Mapping[str, str], body: bytes
) -> InboundMessage | None:
    """Authenticate and parse one webhook request.

    Returns None for updates the assistant ignores (edited messages, channel
    posts, group chats, other update types). Raises Unauthorized for a missing
    or wrong secret token and ValueError for a body that is not an update.
    """
    check_secret(settings, headers)
    update = _decode(body)
    provider_id = str(update.update_id)
    if update.message is not None:
        message = update.message
        if message.chat.type != "private":
            return None
        user = message.from_user
        return InboundMessage(
            channel=TELEGRAM,
            provider_id=provider_id,
            address=str(message.chat.id),
            text=message.text or message.caption or "",
            event=_message_event(message),
            user_name=user.first_name if user else None,
        )
    query = update.callback_query
    if query is not None:
        chat = query.message.chat if query.message else None
        if chat is None or chat.type != "private" or query.data is None:
            return None
        return InboundMessage(
            channel=TELEGRAM,
            provider_id=provider_id,
            address=str(chat.id),
            payload=query.data,
            event={"type": "callback", "callback_query_id": query.id},
            user_name=query.from_user.first_name,
        )
    return None


# --- Interpret and render -----------------------------------------------------


def payload_key(payload: str) -> str:
    """A short, stable callback key for a payload that cannot be sent as is."""
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]
    return KEY_PREFIX + digest


def callback_data(payload: str) -> str | None:
    """The payload itself when Telegram accepts it as callback data, else None."""
    size = len(payload.encode("utf-8"))
    if 0 < size <= MAX_CALLBACK_BYTES and not payload.startswith(KEY_PREFIX):
        return payload
    return None


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT_UNITS) -> list[str]:
    """Split text into messages Telegram accepts, at line or word breaks."""
    chunks: list[str] = []
    rest = text
    while _utf16_len(rest) > limit:
        cut, units = 0, 0
        for index, char in enumerate(rest):
            units += 2 if ord(char) > 0xFFFF else 1
            if units > limit:
                cut = index
                break
        head = rest[:cut]
        for separator in ("\n", " "):
            position = head.rfind(separator)
            if position > cut // 2:
                cut = position
                break
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    chunks.append(rest)
    return chunks


def _rows(buttons: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    """One button per row for long titles, up to three per row for short ones."""
    if not buttons:
        return []
    if any(len(button["text"]) > SHORT_TITLE for button in buttons):
        return [[button] for button in buttons]
    rows = math.ceil(len(buttons) / BUTTONS_PER_ROW)
    width = math.ceil(len(buttons) / rows)
    return [buttons[start : start + width] for start in range(0, len(buttons), width)]


def _event_for_rasa(event: dict[str, Any]) -> dict[str, Any]:
    """The event without Telegram user ids, which would unmask the pseudonym."""
    return {
        key: value
        for key, value in event.items()
        if key not in {"sender_id", "user_id"} and value is not None
    }


def _local_message(text: str) -> dict[str, Any]:
    return {"kind": "message", "text": text, "buttons": []}


def _inform(entity: str, value: str) -> str:
    return "/inform" + json.dumps({entity: value}, ensure_ascii=False)


class TelegramChannel:
    """Interprets Telegram messages and renders replies as Telegram bodies.

    Conversation state keys: "payloads" (payloads of the buttons the person may
    press now) and "payloads_by_key" (short callback keys of long payloads).
    """

    name = TELEGRAM

    def interpret(
        self, message: InboundMessage, state: dict[str, Any], opted_out: bool
    ) -> Interpretation:
        """Decide what a Telegram message means for Rasa."""
        state = dict(state)
        allowed = list(state.get("payloads", []))
        event = message.event or {}
        kind = event.get("type")
        if kind == "callback":
            return self._callback(message, event, state, allowed)
        if kind == "photo":
            return Interpretation(
                rasa_text=_inform("photo_file_id", str(event["file_id"])),
                rasa_metadata={"event": _event_for_rasa(event)},
                state=state,
            )
        if kind == "contact":
            return self._contact(event, message.address, state)
        if kind == "unsupported":
            return Interpretation(
                rasa_text=None,
                local_bodies=[_local_message(TEXT_UNSUPPORTED)],
                state=state,
            )
        text = message.text.strip()
        command = text.split(maxsplit=1)[0].split("@")[0] if text else ""
        if command == "/start":
            return Interpretation(
                rasa_text=START_TEXT,
                state=state,
                opted_out=False if opted_out else None,
            )
        return Interpretation(
            rasa_text=neutralise_command(text, allowed) or None, state=state
        )

    def _callback(
        self,
        message: InboundMessage,
        event: dict[str, Any],
        state: dict[str, Any],
        allowed: list[str],
    ) -> Interpretation:
        data = message.payload or ""
        payload = state.get("payloads_by_key", {}).get(data, data)
        answer = {
            "kind": "answer_callback",
            "callback_query_id": event.get("callback_query_id"),
        }
        if payload.startswith(KEY_PREFIX):  # a key we no longer know
            answer["text"] = TEXT_EXPIRED_BUTTON
            return Interpretation(rasa_text=None, local_bodies=[answer], state=state)
        text = payload if payload in allowed else neutralise_command(payload, allowed)
        return Interpretation(
            rasa_text=text or None, local_bodies=[answer], state=state
        )

    def _contact(
        self, event: dict[str, Any], address: str, state: dict[str, Any]
    ) -> Interpretation:
        owner = event.get("sender_id") or address
        if event.get("user_id") is None or str(event["user_id"]) != str(owner):
            return Interpretation(
                rasa_text=None,
                local_bodies=[_local_message(TEXT_NOT_OWN_CONTACT)],
                state=state,
            )
        phone = normalize_phone(str(event.get("phone_number") or ""))
        if phone is None:
            return Interpretation(
                rasa_text=None,
                local_bodies=[_local_message(TEXT_NOT_INDONESIAN)],
                state=state,
            )
        return Interpretation(
            rasa_text=_inform("contact_phone", phone),
            rasa_metadata={"event": {"type": "contact", "phone": phone}},
            state=state,
        )

    def render(self, replies: list[Reply], state: dict[str, Any]) -> RenderedReplies:
        """Turn replies into plain-text messages with inline keyboards."""
        state = dict(state)
        if not replies:
            return RenderedReplies(bodies=[], state=state)
        keys: dict[str, str] = dict(state.get("payloads_by_key", {}))
        payloads: list[str] = []
        bodies: list[dict[str, Any]] = []
        for reply in replies:
            text = reply.text.strip()
            if reply.image_url:
                text = f"{text}\n{reply.image_url}".strip()
            if not text and not reply.buttons:
                continue
            buttons = []
            for button in reply.buttons:
                data = callback_data(button.payload)
                if data is None:
                    data = payload_key(button.payload)
                    keys.pop(data, None)
                    keys[data] = button.payload
                buttons.append({"text": button.title, "callback_data": data})
                payloads.append(button.payload)
            chunks = split_text(text or CHOOSE_TEXT)
            bodies.extend(_local_message(chunk) for chunk in chunks[:-1])
            bodies.append(
                {"kind": "message", "text": chunks[-1], "buttons": _rows(buttons)}
            )
        state["payloads"] = list(dict.fromkeys(payloads))
        state["payloads_by_key"] = dict(list(keys.items())[-MAX_STORED_KEYS:])
        return RenderedReplies(bodies=bodies, state=state)


# --- Outbound -----------------------------------------------------------------


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """Paces sends under Telegram's limits, within one process.

    About 30 messages a second overall, and in one chat one message a second
    after a short burst (groups: 20 a minute). Each wait is reserved before
    sleeping (GCRA), so concurrent senders queue fairly without a lock.
    """

    def __init__(
        self,
        overall_per_second: float = 30.0,
        chat_interval: float = 1.0,
        chat_burst: int = 3,
        group_interval: float = 3.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._overall_interval = 1.0 / overall_per_second
        self._overall_burst = 5
        self._chat_interval = chat_interval
        self._group_interval = group_interval
        self._chat_burst = chat_burst
        self._clock = clock
        self._sleep = sleep
        self._overall_tat = 0.0
        self._chat_tat: dict[str, float] = {}
        self._paused: dict[str, float] = {}

    def _reserve(self, tat: float, interval: float, burst: int) -> tuple[float, float]:
        now = self._clock()
        tat = max(tat, now)
        start = max(now, tat - interval * (burst - 1))
        return start - now, tat + interval

    def paused_for(self, chat: str) -> float:
        """Seconds Telegram asked us to leave this chat alone, 0 when none."""
        remaining = self._paused.get(chat, 0.0) - self._clock()
        if remaining <= 0:
            self._paused.pop(chat, None)
            return 0.0
        return remaining

    def pause(self, chat: str, seconds: float) -> None:
        """Remember a retry_after for this chat."""
        self._paused[chat] = self._clock() + seconds

    async def wait(self, chat: str | None) -> None:
        """Sleep until a message to this chat (None: no chat) may be sent."""
        if chat is not None:
            self._forget_idle_chats()
            group = chat.startswith("-")
            interval = self._group_interval if group else self._chat_interval
            delay, self._chat_tat[chat] = self._reserve(
                self._chat_tat.get(chat, 0.0), interval, self._chat_burst
            )
            if delay > 0:
                await self._sleep(delay)
        delay, self._overall_tat = self._reserve(
            self._overall_tat, self._overall_interval, self._overall_burst
        )
        if delay > 0:
            await self._sleep(delay)

    def _forget_idle_chats(self) -> None:
        if len(self._chat_tat) < 10_000:
            return
        now = self._clock()
        self._chat_tat = {c: t for c, t in self._chat_tat.items() if t > now}
        self._paused = {c: t for c, t in self._paused.items() if t > now}


def make_bot(settings: Settings, timeout: float = 10.0, pool_size: int = 8) -> Bot:
    """A python-telegram-bot client for the configured API (real or fake)."""
    if not settings.telegram_token:
        raise ValueError("TELEGRAM_TOKEN is not set")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its URLs carry the token
    request = HTTPXRequest(
        connection_pool_size=pool_size,
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        pool_timeout=timeout,
    )
    return Bot(
        settings.telegram_token,
        base_url=f"{settings.telegram_api_url}/bot",
        base_file_url=f"{settings.telegram_api_url}/file/bot",
        request=request,
        get_updates_request=request,
    )


def retry_after_seconds(error: RetryAfter) -> float:
    """RetryAfter's delay in seconds, whether PTB gives an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _chat_id(address: str) -> int | str:
    return int(address) if address.lstrip("-").isdigit() else address


def _keyboard(rows: list[list[dict[str, str]]]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(b["text"], callback_data=b["callback_data"])
                for b in row
            ]
            for row in rows
        ]
    )


class TelegramSender:
    """Sends rendered Telegram bodies with python-telegram-bot's `Bot`."""

    channel = TELEGRAM

    def __init__(
        self,
        settings: Settings,
        timeout: float = 10.0,
        limiter: RateLimiter | None = None,
    ) -> None:
        if not settings.telegram_token:
            raise ValueError("TELEGRAM_TOKEN is not set")
        self._settings = settings
        self._timeout = timeout
        self._limiter = limiter or RateLimiter()
        self._bot: Bot | None = None

    def _get_bot(self) -> Bot:
        if self._bot is None:
            self._bot = make_bot(self._settings, timeout=self._timeout)
        return self._bot

    async def send(self, address: str, body: dict[str, Any]) -> SendResult:
        """Send one body; never raises for provider errors."""
        kind = body.get("kind")
        try:
            if kind == "message":
                return await self._send_message(address, body)
            if kind == "answer_callback":
                await self._limiter.wait(None)
                await self._get_bot().answer_callback_query(
                    str(body["callback_query_id"]), text=body.get("text")
                )
                return SendResult(ok=True)
        except RetryAfter as exc:
            seconds = retry_after_seconds(exc)
            self._limiter.pause(address, seconds)
            log.warning("telegram rate limited %s for %.0f s", kind, seconds)
            return SendResult(ok=False, retry_after=seconds, error=exc.message)
        except (Forbidden, BadRequest, ChatMigrated) as exc:
            log.warning("telegram refused %s: %s", kind, type(exc).__name__)
            return SendResult(ok=False, permanent=True, error=exc.message)
        except InvalidToken:
            log.error("telegram rejected the bot token")
            return SendResult(ok=False, error="Telegram rejected TELEGRAM_TOKEN")
        except TelegramError as exc:
            log.warning("telegram send failed (%s), will retry", type(exc).__name__)
            return SendResult(ok=False, error=exc.message)
        return SendResult(ok=False, permanent=True, error=f"unknown body kind {kind!r}")

    async def _send_message(self, address: str, body: dict[str, Any]) -> SendResult:
        paused = self._limiter.paused_for(address)
        if paused > 0:
            return SendResult(ok=False, retry_after=paused, error="rate limited")
        await self._limiter.wait(address)
        sent = await self._get_bot().send_message(
            chat_id=_chat_id(address),
            text=str(body["text"]),
            reply_markup=_keyboard(body.get("buttons") or []),
        )
        return SendResult(ok=True, provider_message_id=str(sent.message_id))

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._bot is not None:
            bot, self._bot = self._bot, None
            await bot.request.shutdown()
