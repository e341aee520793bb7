"""A local fake of the Telegram Bot API, for the real python-telegram-bot client.

Runs a Starlette app under uvicorn in a background thread on a free 127.0.0.1
port. Answers with Telegram's response shapes, records every call, and can be
told to fail the next calls (429 with retry_after, 403 blocked, 400 chat not
found, 500) or to answer them slowly. Message ids count per chat for both sides,
as in a private chat: `person_writes` gives the person's message its id, which
the update posted to the gateway then carries.

    api = FakeTelegramApi().start()
    settings = load_settings({..., "TELEGRAM_API_URL": api.url, ...})
    ...
    api.stop()
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

DEFAULT_TOKEN = "123456789:TEST-fake-token_for-local-tests"
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "Prakerja",
    "username": "prakerja_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
JSON_FIELDS = {"reply_markup", "allowed_updates", "entities", "link_preview_options"}
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")

ERRORS: dict[str, tuple[int, str]] = {
    "retry_after": (429, "Too Many Requests: retry after {retry_after}"),
    "blocked": (403, "Forbidden: bot was blocked by the user"),
    "chat_not_found": (400, "Bad Request: chat not found"),
    "server_error": (500, "Internal Server Error"),
}


@dataclass
class ApiCall:
    """One request the fake received (params decoded, status answered)."""

    method: str
    params: dict[str, Any]
    status: int = 200
    at: float = field(default_factory=time.monotonic)
    """When the request arrived (time.monotonic)."""


@dataclass
class _Failure:
    method: str
    error: str
    retry_after: int = 1
    delay: float = 0.0


@dataclass
class _State:
    calls: list[ApiCall] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    last_message_id: dict[str, int] = field(default_factory=dict)
    """Per chat: message ids count up in each private chat, for both sides."""
    messages: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    """(chat, message id) -> the message (the bot's and the person's)."""


def _error(status: int, description: str, **parameters: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "ok": False,
        "error_code": status,
        "description": description,
    }
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=status)


def _ok(result: Any, description: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return JSONResponse(body)


def _decode(raw: dict[str, Any]) -> dict[str, Any]:
    """Form values PTB JSON-encodes (keyboards, lists) back to Python values."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in JSON_FIELDS and isinstance(value, str):
            params[key] = json.loads(value)
        elif key == "drop_pending_updates" and isinstance(value, str):
            params[key] = value == "true"
        else:
            params[key] = value
    return params


class FakeTelegramApi(BackgroundServer):
    """The fake Bot API server; `url` is what TELEGRAM_API_URL should be."""

    def __init__(
        self, token: str = DEFAULT_TOKEN, same_port: bool = False, latency: float = 0.0
    ) -> None:
        """same_port: a restart listens where the first start did (a Bot API that
        was unreachable for a while). latency: seconds each sendMessage takes,
        half before the message is stored and half after (as over a network)."""
        self.token = token
        self.latency = latency
        self._in_flight = 0
        self._lock = threading.Lock()
        self._state = _State()
        app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._handle, methods=["POST", "GET"])
            ]
        )
        super().__init__(
            app, name="FakeTelegramApi", lifespan="auto", same_port=same_port
        )

    # --- control -----------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        error: str = "retry_after",
        method: str = "sendMessage",
        retry_after: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `count` calls of `method` with an error.

        error: "retry_after" (429), "blocked" (403), "chat_not_found" (400),
        "server_error" (500), "slow" (handle the call after `delay` seconds), or
        "stall" (handle it at once, answer after `delay` seconds).
        """
        if error not in ("slow", "stall") and error not in ERRORS:
            raise ValueError(f"unknown error {error!r}")
        with self._lock:
            self._state.failures.extend(
                _Failure(method, error, retry_after, delay) for _ in range(count)
            )

    def reset(self) -> None:
        """Forget calls, pending failures and the webhook."""
        with self._lock:
            self._state = _State()

    @property
    def calls(self) -> list[ApiCall]:
        """Every call so far, in order."""
        with self._lock:
            return list(self._state.calls)

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """Parameters of the successful calls of one method."""
        return [c.params for c in self.calls if c.method == method and c.status == 200]

    @property
    def sends_in_flight(self) -> int:
        """sendMessage calls received and not answered yet."""
        with self._lock:
            return self._in_flight

    @property
    def webhook(self) -> dict[str, Any]:
        """The webhook as last set (empty when none)."""
        with self._lock:
            return dict(self._state.webhook)

    # --- server ------------------------------------------------------------

    async def _params(self, request: Request) -> dict[str, Any]:
        if request.headers.get("content-type", "").startswith("application/json"):
            data = await request.json()
            return dict(data) if isinstance(data, dict) else {}
        form = await request.form()
        raw = {key: value for key, value in form.items() if isinstance(value, str)}
        return _decode(raw) | dict(request.query_params)

    def _take_failure(self, method: str) -> _Failure | None:
        with self._lock:
            for index, failure in enumerate(self._state.failures):
                if failure.method == method:
                    return self._state.failures.pop(index)
        return None

    def _record(self, method: str, params: dict[str, Any], status: int) -> None:
        with self._lock:
            self._state.calls.append(ApiCall(method, params, status))

    async def _handle(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        params = await self._params(request)
        failure = self._take_failure(method)
        if failure is not None and failure.error == "slow":
            await asyncio.sleep(failure.delay)
        elif failure is not None and failure.error != "stall":
            status, description = ERRORS[failure.error]
            self._record(method, params, status)
            if failure.error == "retry_after":
                return _error(
                    status,
                    description.format(retry_after=failure.retry_after),
                    retry_after=failure.retry_after,
                )
            return _error(status, description)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            self._record(method, params, 404)
            return _error(404, "Not Found")
        slow = self.latency / 2 if method == "sendMessage" else 0.0
        with self._lock:
            self._in_flight += method == "sendMessage"
        try:
            if slow:
                await asyncio.sleep(slow)
            response: JSONResponse = handler(params)
            self._record(method, params, response.status_code)
            if failure is not None and failure.error == "stall":
                await asyncio.sleep(failure.delay)
            if slow:
                await asyncio.sleep(slow)
        finally:
            with self._lock:
                self._in_flight -= method == "sendMessage"
        return response

    def _m_getMe(self, params: dict[str, Any]) -> JSONResponse:  # noqa: N802
        return _ok(BOT_USER)

    def _m_sendMessage(self, params: dict[str, Any]) -> JSONResponse:  # noqa: N802
        text = str(params.get("text", ""))
        if "chat_id" not in params:
            return _error(400, "Bad Request: chat_id is empty")
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            return _error(400, "Bad Request: message is too long")
        markup = params.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data", "")
                if not 1 <= len(data.encode("utf-8")) <= 64:
                    return _error(400, "Bad Request: BUTTON_DATA_INVALID")
        message = self._new_message(str(params["chat_id"]), BOT_USER, text, markup)
        return _ok(message)

    def _new_message(
        self, chat: str, sender: dict[str, Any], text: str, markup: dict[str, Any]
    ) -> dict[str, Any]:
        """Store a message under the chat's next id (ids count per chat)."""
        with self._lock:
            message_id = self._state.last_message_id.get(chat, 0) + 1
            self._state.last_message_id[chat] = message_id
            message: dict[str, Any] = {
                "message_id": message_id,
                "from": sender,
                "chat": {
                    "id": int(chat) if chat.lstrip("-").isdigit() else chat,
                    "type": "private",
                },
                "date": int(time.time()),
                "text": text,
            }
            if markup:
                message["reply_markup"] = markup
            self._state.messages[(chat, message_id)] = message
        return message

    def person_writes(self, chat_id: int | str, text: str = "halo") -> int:
        """A message the person sends in the chat (it takes the chat's next id,
        and the bot cannot edit it); its id, for the update that carries it."""
        person = {"id": int(chat_id), "is_bot": False, "first_name": "Andi"}
        return int(self._new_message(str(chat_id), person, text, {})["message_id"])

    def delete(self, chat_id: int | str, message_id: int) -> None:
        """The message is deleted (its id stays used)."""
        with self._lock:
            self._state.messages.pop((str(chat_id), message_id), None)

    def messages_in(self, chat_id: int | str) -> list[dict[str, Any]]:
        """The chat's messages, oldest first (edits applied)."""
        with self._lock:
            chat = str(chat_id)
            found = [m for (c, _), m in self._state.messages.items() if c == chat]
        return sorted(found, key=lambda m: int(m["message_id"]))

    def _m_editMessageText(self, params: dict[str, Any]) -> JSONResponse:  # noqa: N802
        key = (str(params.get("chat_id")), int(params.get("message_id") or 0))
        text = str(params.get("text", ""))
        markup = params.get("reply_markup") or {}
        with self._lock:
            message = self._state.messages.get(key)
            if message is None:
                return _error(400, "Bad Request: message to edit not found")
            if message["from"] != BOT_USER:
                return _error(400, "Bad Request: message can't be edited")
            same_markup = (message.get("reply_markup") or {}) == markup
            if message["text"] == text and same_markup:
                return _error(
                    400,
                    "Bad Request: message is not modified: specified new message "
                    "content and reply markup are exactly the same as a current "
                    "content and reply markup of the message",
                )
            message["text"] = text
            if markup:
                message["reply_markup"] = markup
            else:
                message.pop("reply_markup", None)
            return _ok(dict(message))

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> JSONResponse:  # noqa: N802
        if not params.get("callback_query_id"):
            return _error(
                400, "Bad Request: query is too old and response timeout expired"
            )
        return _ok(True)

    def _m_setWebhook(self, params: dict[str, Any]) -> JSONResponse:  # noqa: N802
        secret = params.get("secret_token")
        if secret is not None and not SECRET_TOKEN.fullmatch(str(secret)):
            return _error(
                400, "Bad Request: secret token contains unallowed characters"
            )
        if not params.get("url"):
            return self._m_deleteWebhook(params)
        with self._lock:
            self._state.webhook = dict(params)
        return _ok(True, "Webhook was set")

    def _m_deleteWebhook(self, params: dict[str, Any]) -> JSONResponse:  # noqa: N802
        with self._lock:
            self._state.webhook = {}
        return _ok(True, "Webhook was deleted")

    def _m_getWebhookInfo(self, params: dict[str, Any]) -> JSONResponse:  # noqa: N802
        webhook = self.webhook
        info: dict[str, Any] = {
            "url": webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if webhook:
            info["max_connections"] = int(webhook.get("max_connections", 40))
            if "allowed_updates" in webhook:
                info["allowed_updates"] = webhook["allowed_updates"]
        return _ok(info)
