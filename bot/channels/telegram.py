"""Telegram: parse webhook updates, render replies, send through the Bot API.

Inbound updates are authenticated by the secret token Telegram sends in
`X-Telegram-Bot-Api-Secret-Token` and parsed with python-telegram-bot's
`Update`; the provider id is "<bot id>:<update_id>", so update ids that start over
with another bot do not collide. Replies become plain-text messages (no parse
mode, so nothing a user or the assistant writes can turn into markup) with inline
keyboards. Callback data carries the number of the reply it belongs to ("7:Ya"),
kept in the conversation state, so a tap on an older keyboard, or a second tap on
the same one, only gets "Pilihan ini sudah tidak berlaku." instead of answering
the next question; payloads longer than Telegram's 64 bytes are replaced by a
short key kept in the state. `TelegramSender` sends stored bodies with
`telegram.Bot`, paced by `bot.channels.pacing` (shared by all processes through
Redis when configured; a long wait is handed back to the outbox as retry_after
instead of holding a send slot), and maps Telegram's errors
to `SendResult`. Telegram cannot be asked what it delivered, so a send is repeated
only when the request provably never left (`never_arrived`: connection refused,
connect or pool timeout, which python-telegram-bot raises as `NetworkError` or
`TimedOut` caused by `RequestNotSentError` from our aiohttp transport,
`bot.channels.telegram_request`) or Telegram answered with an error; a timeout
while waiting for the answer, or a connection lost mid-response, is reported as
an unknown outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import warnings
from collections.abc import Mapping
from datetime import datetime, timedelta
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
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from bot.channels.base import (
    REQUEST_IN_FLIGHT,
    TELEGRAM,
    InboundMessage,
    Interpretation,
    LookupResult,
    RenderedReplies,
    Reply,
    SendResult,
    Unauthorized,
    neutralise_command,
)
from bot.channels.pacing import PACED, Pacer, RateLimiter
from bot.channels.request_tracing import RequestNotSentError
from bot.channels.telegram_lookup import look_up_sent
from bot.channels.telegram_request import AiohttpRequest
from bot.policy.catalogue import module_texts, say
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
GENERATIONS = 1000  # reply numbers wrap around: at most "999:" before the payload
_TAGGED = re.compile(r"(\d{1,3}):(.*)", re.DOTALL)
MAX_PACING_WAIT = 1.0  # seconds a send may wait for the rate limiter in its slot
SHORT_TITLE = 12  # titles up to this length share a keyboard row
BUTTONS_PER_ROW = 3

START_TEXT = "halo"
__getattr__ = module_texts(
    {
        "CHOOSE_TEXT": "telegram.choose",
        "TEXT_NOT_OWN_CONTACT": "telegram.not_own_contact",
        "TEXT_NOT_INDONESIAN": "telegram.not_indonesian",
        "TEXT_EXPIRED_BUTTON": "telegram.expired_button",
        "TEXT_UNSUPPORTED": "telegram.unsupported",
    }
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
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, too deep
        raise ValueError("Telegram update is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise ValueError("Telegram update has no update_id")
    try:
        return Update.de_json(data, bot=None)
    except (  # e.g. a date no clock can show, or nesting too deep
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
        OSError,
        RecursionError,
    ) as exc:
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


def bot_id(settings: Settings) -> str | None:
    """The bot's id: the part of TELEGRAM_TOKEN before ":" (None without a token)."""
    token = settings.telegram_token or ""
    head = token.split(":", 1)[0].strip()
    return head or None


def update_key(settings: Settings, update_id: int) -> str:
    """The stored provider id of an update: "<bot id>:<update_id>"."""
    owner = bot_id(settings)
    return f"{owner}:{update_id}" if owner else str(update_id)


def parse_webhook(
    settings: Settings, headers: Mapping[str, str], body: bytes
) -> InboundMessage | None:
    """Authenticate and parse one webhook request.

    Returns None for updates the assistant ignores (edited messages, channel
    posts, group chats, messages without a chat, other update types). Raises
    Unauthorized for a missing or wrong secret token and ValueError for a body
    that is not an update (python-telegram-bot does not check the fields'
    types, so a field of the wrong type is caught here).
    """
    check_secret(settings, headers)
    update = _decode(body)
    try:
        message = _inbound(settings, update)
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise ValueError("Telegram update has fields of the wrong type") from exc
    if message is not None and not _well_typed(message):
        raise ValueError("Telegram update has fields of the wrong type")
    return message


def _well_typed(message: InboundMessage) -> bool:
    """Every field of the message has the type a real update gives it."""
    return (
        message.address.lstrip("-").isdigit()
        and isinstance(message.text, str)
        and isinstance(message.payload, str | None)
        and isinstance(message.user_name, str | None)
        and (
            message.chat_message_id is None
            or (
                type(message.chat_message_id) is int
                and 0 < message.chat_message_id < 2**63
            )
        )
    )


def _inbound(settings: Settings, update: Update) -> InboundMessage | None:
    provider_id = update_key(settings, update.update_id)
    if update.message is not None:
        message = update.message
        if message.chat is None or message.chat.type != "private":
            return None
        user = message.from_user
        return InboundMessage(
            channel=TELEGRAM,
            provider_id=provider_id,
            address=_chat_address(message.chat.id),
            text=message.text or message.caption or "",
            event=_message_event(message),
            user_name=user.first_name if user else None,
            chat_message_id=message.message_id,
        )
    query = update.callback_query
    if query is not None:
        chat = query.message.chat if query.message else None
        if chat is None or chat.type != "private" or query.data is None:
            return None
        return InboundMessage(
            channel=TELEGRAM,
            provider_id=provider_id,
            address=_chat_address(chat.id),
            payload=query.data,
            event={"type": "callback", "callback_query_id": query.id},
            user_name=query.from_user.first_name if query.from_user else None,
            chat_message_id=query.message.message_id if query.message else None,
        )
    return None


def _chat_address(value: object) -> str:
    """A chat id as stored: an integer's digits (TypeError for anything else)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("chat id is not an integer")
    return str(value)


# --- Interpret and render -----------------------------------------------------


def payload_key(payload: str) -> str:
    """A short, stable callback key for a payload that cannot be sent as is."""
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]
    return KEY_PREFIX + digest


def callback_data(payload: str, generation: int = 0) -> str | None:
    """The callback data of a button of reply number `generation`: "<n>:<payload>",
    or None when that is too long for Telegram (or would read as a key)."""
    data = f"{generation % GENERATIONS}:{payload}"
    size = len(data.encode("utf-8"))
    if payload and size <= MAX_CALLBACK_BYTES and not payload.startswith(KEY_PREFIX):
        return data
    return None


def _key_pairs(state: dict[str, Any]) -> list[list[str]]:
    """The [key, payload] pairs of long payloads (a list: JSONB keeps no key order).

    Reads the older dict form ("payloads_by_key") too.
    """
    pairs = state.get("payload_keys")
    if isinstance(pairs, list):
        return [
            [str(pair[0]), str(pair[1])]
            for pair in pairs
            if isinstance(pair, list | tuple) and len(pair) == 2
        ]
    legacy = state.get("payloads_by_key")
    if isinstance(legacy, dict):
        return [[str(key), str(value)] for key, value in legacy.items()]
    return []


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

    Conversation state keys: "generation" (number of the latest rendered reply,
    which its buttons carry), "payloads" (payloads of its buttons, which the person
    may press now) and "payload_keys" ([key, payload] pairs of its long payloads).
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
                local_bodies=[_local_message(say("telegram.unsupported"))],
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
        answer = {
            "kind": "answer_callback",
            "callback_query_id": event.get("callback_query_id"),
        }
        payload = self._pressed(message.payload or "", state)
        if payload is None:  # not a button of the latest reply
            answer["text"] = say("telegram.expired_button")
            return Interpretation(rasa_text=None, local_bodies=[answer], state=state)
        if "generation" in state:  # one tap per keyboard: a second one is stale
            state["generation"] = (int(state["generation"]) + 1) % GENERATIONS
            state["payloads"] = []
            state["payload_keys"] = []
            state.pop("payloads_by_key", None)
        text = payload if payload in allowed else neutralise_command(payload, allowed)
        return Interpretation(
            rasa_text=text or None, local_bodies=[answer], state=state
        )

    @staticmethod
    def _pressed(data: str, state: dict[str, Any]) -> str | None:
        """The payload of a button of the latest reply, None for any other tap."""
        keys = {key: payload for key, payload in _key_pairs(state)}
        if "generation" not in state:  # rendered before replies were numbered
            payload = keys.get(data, data)
            return None if payload.startswith(KEY_PREFIX) else payload
        tagged = _TAGGED.fullmatch(data)
        if tagged is None or int(tagged.group(1)) != int(state["generation"]):
            return None
        payload = tagged.group(2)
        if payload.startswith(KEY_PREFIX):
            return keys.get(payload)
        return payload

    def _contact(
        self, event: dict[str, Any], address: str, state: dict[str, Any]
    ) -> Interpretation:
        owner = event.get("sender_id") or address
        if event.get("user_id") is None or str(event["user_id"]) != str(owner):
            return Interpretation(
                rasa_text=None,
                local_bodies=[_local_message(say("telegram.not_own_contact"))],
                state=state,
            )
        phone = normalize_phone(str(event.get("phone_number") or ""))
        if phone is None:
            return Interpretation(
                rasa_text=None,
                local_bodies=[_local_message(say("telegram.not_indonesian"))],
                state=state,
            )
        return Interpretation(
            rasa_text=_inform("contact_phone", phone),
            rasa_metadata={"event": {"type": "contact", "phone": phone}},
            state=state,
        )

    def render(self, replies: list[Reply], state: dict[str, Any]) -> RenderedReplies:
        """Turn replies into plain-text messages with inline keyboards.

        Each rendered turn gets the next reply number; its buttons carry it.
        """
        state = dict(state)
        if not replies:
            return RenderedReplies(bodies=[], state=state)
        generation = (int(state.get("generation", 0)) + 1) % GENERATIONS
        keys: dict[str, str] = {}
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
                data = callback_data(button.payload, generation)
                if data is None:
                    key = payload_key(button.payload)
                    keys.pop(key, None)
                    keys[key] = button.payload
                    data = f"{generation}:{key}"
                buttons.append({"text": button.title, "callback_data": data})
                payloads.append(button.payload)
            chunks = split_text(text or say("telegram.choose"))
            bodies.extend(_local_message(chunk) for chunk in chunks[:-1])
            bodies.append(
                {"kind": "message", "text": chunks[-1], "buttons": _rows(buttons)}
            )
        if not bodies:
            return RenderedReplies(bodies=[], state=state)
        state["generation"] = generation
        state["payloads"] = list(dict.fromkeys(payloads))
        state["payload_keys"] = [list(pair) for pair in keys.items()][-MAX_STORED_KEYS:]
        state.pop("payloads_by_key", None)
        return RenderedReplies(bodies=bodies, state=state)


# --- Outbound -----------------------------------------------------------------


SEND_MESSAGE = "sendMessage"


def _quiet_send_message_hint() -> None:
    """Silence PTB's hint to use `Bot.send_message` for our `sendMessage`
    requests (only those this module makes; registering it again replaces it).

    `TelegramSender` sends with `Bot.do_api_request`, which hands back
    Telegram's answer as it came, because `send_message` builds a whole
    `Message` of it (the sender, the chat, the keyboard, the date), about a
    twentieth of the gateway's CPU per message under load, of which only
    `message_id` is kept. The request is the same (a test compares them)."""
    warnings.filterwarnings(
        "ignore",
        message=rf"Please use 'Bot\.{SEND_MESSAGE}'",
        category=PTBUserWarning,
        module=re.escape(__name__) + r"\Z",
    )


def make_bot(settings: Settings, timeout: float = 10.0, pool_size: int = 8) -> Bot:
    """A python-telegram-bot client for the configured API (real or fake)."""
    if not settings.telegram_token:
        raise ValueError("TELEGRAM_TOKEN is not set")
    _quiet_send_message_hint()
    request = AiohttpRequest(pool_size=pool_size, timeout=timeout)
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


def never_arrived(error: NetworkError) -> bool:
    """Whether Telegram provably never got the request, or answered it with an
    error (a 5xx): repeating it cannot deliver the message twice.

    The transport raises `TimedOut`/`NetworkError` *from* its error when no
    answer came (`RequestNotSentError` when nothing left); an error answer carries no
    transport cause."""
    cause = error.__cause__
    if cause is None or isinstance(cause, TelegramError):
        return True  # Telegram answered (e.g. 502), it did not take the message
    return isinstance(cause, RequestNotSentError)


def _cause_name(error: BaseException) -> str:
    cause = error.__cause__
    if isinstance(cause, RequestNotSentError) and cause.__cause__ is not None:
        cause = cause.__cause__
    return type(cause if cause is not None else error).__name__


def _message_id(answer: object) -> str | None:
    """The message id in Telegram's answer to sendMessage (a Message as JSON),
    None when there is none."""
    found = answer.get("message_id") if isinstance(answer, dict) else None
    return str(found) if isinstance(found, int) else None


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
    request_in_flight = REQUEST_IN_FLIGHT
    """Seconds a request may still land after it left (`Lookup`)."""
    marks_requests = True
    """Its transport awaits `request_may_leave` before each request's bytes."""

    def __init__(
        self,
        settings: Settings,
        timeout: float = 10.0,
        limiter: Pacer | None = None,
        max_wait: float | None = None,
        pool_size: int = 16,
    ) -> None:
        """`pool_size`: HTTP connections, at least the sends the outbox runs at once.

        `max_wait`: the longest pacing wait spent inside a send; a longer one is
        returned as retry_after, so the outbox reschedules the row instead of
        holding a slot. By default one second, or the time the overall rate needs
        for `pool_size` sends if longer: sends queued in the limiter never exceed
        the pool, so the overall pace alone never bounces rows back and forth
        through the database; only a chat's own pace (or Telegram's retry_after)
        does.
        """
        if not settings.telegram_token:
            raise ValueError("TELEGRAM_TOKEN is not set")
        self._settings = settings
        self._timeout = timeout
        self._limiter: Pacer = limiter or RateLimiter(
            overall_per_second=settings.telegram_per_second,
            chat_interval=1.0 / settings.telegram_chat_per_second,
        )
        self._pool_size = max(1, pool_size)
        self._max_wait = (
            max(MAX_PACING_WAIT, self._pool_size * self._limiter.overall_interval)
            if max_wait is None
            else max_wait
        )
        self._bot: Bot | None = None

    def _get_bot(self) -> Bot:
        if self._bot is None:
            self._bot = make_bot(
                self._settings, timeout=self._timeout, pool_size=self._pool_size
            )
        return self._bot

    async def lookup(
        self,
        address: str,
        body: dict[str, Any],
        since: datetime,
        after: str | None = None,
    ) -> LookupResult:
        """Whether this message arrived after message `after` of the chat (one
        that was there before the attempt), asked of the chat
        (`bot.channels.telegram_lookup`); undecidable without `after`."""
        if body.get("kind") != "message" or after is None or not after.isdigit():
            return LookupResult(undecidable=True)
        return await look_up_sent(
            self._get_bot(),
            _chat_id(address),
            str(body["text"]),
            _keyboard(body.get("buttons") or []),
            int(after),
        )

    async def send(self, address: str, body: dict[str, Any]) -> SendResult:
        """Send one body; never raises for provider errors."""
        kind = body.get("kind")
        try:
            if kind == "message":
                return await self._send_message(address, body)
            if kind == "answer_callback":
                wait = await self._limiter.wait(None, self._max_wait)
                if wait > 0:
                    return SendResult(ok=False, retry_after=wait, error=PACED)
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
        except NetworkError as exc:  # TimedOut too
            if never_arrived(exc):
                log.warning("telegram unreachable (%s), will retry", _cause_name(exc))
                return SendResult(ok=False, error=f"unreachable: {_cause_name(exc)}")
            log.warning("telegram %s outcome unknown (%s)", kind, _cause_name(exc))
            return SendResult(
                ok=False, unknown=True, error=f"no answer: {_cause_name(exc)}"
            )
        except TelegramError as exc:
            log.warning("telegram send failed (%s), will retry", type(exc).__name__)
            return SendResult(ok=False, error=exc.message)
        return SendResult(ok=False, permanent=True, error=f"unknown body kind {kind!r}")

    async def _send_message(self, address: str, body: dict[str, Any]) -> SendResult:
        paused = self._limiter.paused_for(address)
        if paused > 0:
            return SendResult(ok=False, retry_after=paused, error="rate limited")
        wait = await self._limiter.wait(address, self._max_wait)
        if wait > 0:
            return SendResult(ok=False, retry_after=wait, error=PACED)
        sent = await self._get_bot().do_api_request(
            SEND_MESSAGE,
            api_kwargs={
                "chat_id": _chat_id(address),
                "text": str(body["text"]),
                "reply_markup": _keyboard(body.get("buttons") or []),
            },
        )
        message_id = _message_id(sent)
        if message_id is None:  # it went through, but which id it got is unknown
            log.error("telegram sendMessage answered without a message id")
            return SendResult(ok=False, unknown=True, error="answer without an id")
        return SendResult(ok=True, provider_message_id=message_id)

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._bot is not None:
            bot, self._bot = self._bot, None
            await bot.request.shutdown()
