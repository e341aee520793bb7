"""A local fake of Twilio's REST API (Messages resource) for tests and benchmarks.

Runs Starlette under uvicorn in a background thread on a free 127.0.0.1 port.
Point the real client at it with ``TWILIO_API_URL=<fake.url>``. It checks HTTP
basic auth, answers like Twilio (201 with the Message JSON, or Twilio's error
JSON), records every call, and can be told to fail the next calls, to accept a
message and then answer too late (the client times out although the message
exists), or to swallow a request (no message, no answer in time). Accepted
messages can be listed as Twilio's ``GET .../Messages.json`` does: filtered by
``To``, ``From`` and ``DateSent`` (``DateSent<``/``DateSent>`` are "on or
before"/"on or after"; a date or a date-time), newest first, paged with
``PageSize`` and ``Page``.

With ``status_callbacks`` (e.g. ``("sent", "delivered")``), each accepted
message's ``StatusCallback`` URL is then called with those statuses in order,
signed with the auth token as Twilio signs them (``X-Twilio-Signature``), after
the answer: as Twilio does, so the gateway's cost of a reply includes them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.channels.sms.gsm7 import segment_info
from tests.fakes.server import STOP_TIMEOUT, BackgroundServer

API_VERSION = "2010-04-01"
CALLBACK_KEEPALIVE_SECONDS = 2.0
"""Idle seconds a status callback connection is kept (below uvicorn's 5 s)."""
ERROR_MESSAGES = {
    20003: "Authenticate",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "Invalid 'To' Phone Number",
    21602: "Message body is required.",
    21604: "A 'To' phone number is required.",
    21603: "A 'From' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
}


@dataclass
class Failure:
    """A canned error answer for one upcoming call."""

    status: int
    code: int
    retry_after: float | None = None


@dataclass
class Stall:
    """A call answered late: after `seconds`, with or without creating it."""

    seconds: float
    create: bool


@dataclass
class Call:
    """One recorded Messages.create call."""

    account_sid: str
    params: dict[str, str]
    status: int
    sid: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _error(
    status: int, code: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {
        "code": code,
        "message": ERROR_MESSAGES.get(code, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=headers)


class FakeTwilioApi(BackgroundServer):
    """Twilio's POST /2010-04-01/Accounts/{sid}/Messages.json, locally."""

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-auth-token",
        status_callbacks: tuple[str, ...] = (),
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.status_callbacks = status_callbacks
        self.callbacks: list[tuple[str, str, int]] = []
        """Every status callback made: (message sid, status, HTTP status; 0 when
        the request failed)."""
        self.callback_errors: list[str] = []
        """The transport error of each callback that got no answer."""
        self._callback_tasks: set[asyncio.Task[None]] = set()
        self._callback_client: aiohttp.ClientSession | None = None
        self._callback_loop: asyncio.AbstractEventLoop | None = None
        self.calls: list[Call] = []
        self._failures: list[Failure] = []
        self._delays: list[float] = []
        self._stalls: list[Stall] = []
        self.messages: list[dict[str, Any]] = []
        """Every message accepted, as Twilio's Message JSON, oldest first."""
        self.lookups: list[dict[str, str]] = []
        """The query parameters of every listing."""
        self._lock = threading.Lock()
        path = "/2010-04-01/Accounts/{account_sid}/Messages.json"
        app = Starlette(
            routes=[
                Route(path, self._create_message, methods=["POST"]),
                Route(path, self._list_messages, methods=["GET"]),
            ]
        )
        super().__init__(
            app,
            name="fake Twilio API",
            access_log=True,
            force_exit=True,  # stop() does not wait for slow requests
        )

    @property
    def url(self) -> str:
        """Base URL to use as TWILIO_API_URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def sent(self) -> list[Call]:
        """Calls that Twilio accepted (201)."""
        with self._lock:
            return [call for call in self.calls if call.status == 201]

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``count`` calls with an error (e.g. 429, 500, 400/21610)."""
        default_code = {429: 20429, 500: 20500}.get(status, 21211)
        failure = Failure(status, code or default_code, retry_after)
        with self._lock:
            self._failures.extend([failure] * count)

    def reset(self) -> None:
        """Forget recorded calls and pending failures or delays."""
        with self._lock:
            self.calls.clear()
            self._failures.clear()
            self._delays.clear()
            self._stalls.clear()
            self.messages.clear()
            self.lookups.clear()

    def slow_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Delay the answer to the next ``count`` calls (to test timeouts)."""
        with self._lock:
            self._delays.extend([seconds] * count)

    def stall_next(self, count: int = 1, seconds: float = 2.0) -> None:
        """Accept the next ``count`` messages, then answer only after ``seconds``
        (the client times out although Twilio has the message)."""
        with self._lock:
            self._stalls.extend([Stall(seconds, create=True)] * count)

    def lose_next(self, count: int = 1, seconds: float = 2.0) -> None:
        """Swallow the next ``count`` requests: no message, an error answer only
        after ``seconds`` (the client times out; Twilio has nothing)."""
        with self._lock:
            self._stalls.extend([Stall(seconds, create=False)] * count)

    def _authorised(self, request: Request, account_sid: str) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return (
            secrets.compare_digest(user, self.account_sid)
            and secrets.compare_digest(password, self.auth_token)
            and account_sid == self.account_sid
        )

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    async def _create_message(self, request: Request) -> JSONResponse:
        account_sid = request.path_params["account_sid"]
        form = await request.form()
        params = {key: str(value) for key, value in form.items()}
        headers = {key.lower(): value for key, value in request.headers.items()}
        with self._lock:
            delay = self._delays.pop(0) if self._delays else 0.0
            stall = self._stalls.pop(0) if self._stalls else None
        if delay:
            await asyncio.sleep(delay)
        if stall is not None and not stall.create:
            await asyncio.sleep(stall.seconds)
            self._record(Call(account_sid, params, 500, headers=headers))
            return _error(500, 20500)
        if not self._authorised(request, account_sid):
            self._record(Call(account_sid, params, 401, headers=headers))
            return _error(401, 20003)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            self._record(Call(account_sid, params, failure.status, headers=headers))
            extra = (
                {"Retry-After": f"{failure.retry_after:g}"}
                if failure.retry_after is not None
                else None
            )
            return _error(failure.status, failure.code, extra)
        missing = [
            (name, code)
            for name, code in (("To", 21604), ("From", 21603), ("Body", 21602))
            if not params.get(name)
        ]
        if missing:
            self._record(Call(account_sid, params, 400, headers=headers))
            return _error(400, missing[0][1])
        sid = "SM" + secrets.token_hex(16)
        message = self._message_json(account_sid, sid, params)
        with self._lock:
            # Listed as Twilio lists it once handed on to the carrier (at once here).
            self.messages.append({**message, "status": "sent", "date_sent": _now()})
        self._record(Call(account_sid, params, 201, sid=sid, headers=headers))
        callback = params.get("StatusCallback")
        if callback and self.status_callbacks:
            task = asyncio.create_task(self._call_back(callback, sid, params))
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_tasks.discard)
        if stall is not None:
            await asyncio.sleep(stall.seconds)
        return JSONResponse(message, 201)

    async def _call_back(self, url: str, sid: str, params: dict[str, str]) -> None:
        """POST each of `status_callbacks` for message `sid` to its callback URL,
        one after the other, signed as Twilio signs them."""
        from twilio.request_validator import RequestValidator

        await asyncio.sleep(0.01)  # after the answer has gone out
        session = self._callbacks_session()
        validator = RequestValidator(self.auth_token)
        for status in self.status_callbacks:
            form = {
                "AccountSid": self.account_sid,
                "ApiVersion": API_VERSION,
                "From": params.get("From", ""),
                "MessageSid": sid,
                "MessageStatus": status,
                "SmsSid": sid,
                "SmsStatus": status,
                "To": params.get("To", ""),
            }
            headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
            try:
                async with session.post(url, data=form, headers=headers) as answer:
                    await answer.read()
                    code = answer.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                code = 0
                self.callback_errors.append(type(exc).__name__)
            with self._lock:
                self.callbacks.append((sid, status, code))

    def _callbacks_session(self) -> aiohttp.ClientSession:
        """The callbacks' kept connections, one session per server run (loop)."""
        loop = asyncio.get_running_loop()
        if self._callback_client is None or self._callback_loop is not loop:
            self._callback_client = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=10.0),
                # Idle connections closed before the gateway's server closes
                # them (uvicorn: 5 s), so that no callback is posted on a
                # connection the server is closing at that moment.
                connector=aiohttp.TCPConnector(
                    limit=0, keepalive_timeout=CALLBACK_KEEPALIVE_SECONDS
                ),
            )
            self._callback_loop = loop
        return self._callback_client

    def stop(self) -> None:
        """Close the callbacks' connections on the server's loop, then stop."""
        session, loop = self._callback_client, self._callback_loop
        self._callback_client = self._callback_loop = None
        if session is not None and loop is not None and loop.is_running():
            closing = asyncio.run_coroutine_threadsafe(session.close(), loop)
            with contextlib.suppress(Exception):
                closing.result(timeout=STOP_TIMEOUT)
        super().stop()

    async def _list_messages(self, request: Request) -> JSONResponse:
        account_sid = request.path_params["account_sid"]
        if not self._authorised(request, account_sid):
            return _error(401, 20003)
        query = dict(request.query_params)
        with self._lock:
            self.lookups.append(query)
            found = [m for m in reversed(self.messages) if _matches(m, query)]
        size = int(query.get("PageSize", "50"))
        page = int(query.get("Page", "0"))
        chosen = found[page * size : (page + 1) * size]
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
        more = (page + 1) * size < len(found)
        return JSONResponse(
            {
                "messages": chosen,
                "start": page * size,
                "end": page * size + max(len(chosen) - 1, 0),
                "page": page,
                "page_size": size,
                "uri": f"{uri}?PageSize={size}&Page={page}",
                "first_page_uri": f"{uri}?PageSize={size}&Page=0",
                "previous_page_uri": None,
                "next_page_uri": (
                    f"{uri}?PageSize={size}&Page={page + 1}" if more else None
                ),
            }
        )

    @staticmethod
    def _message_json(
        account_sid: str, sid: str, params: dict[str, str]
    ) -> dict[str, Any]:
        now = _now()
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
        return {
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "body": params["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": params["From"],
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(segment_info(params["Body"]).segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": params["To"],
            "uri": f"{uri}.json",
        }


def _now() -> str:
    """Now in Twilio's RFC 2822 form."""
    return format_datetime(datetime.now(timezone.utc).replace(microsecond=0))


def _moment(value: str) -> datetime:
    """A DateSent filter value: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)."""
    if len(value) == len("YYYY-MM-DD"):
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _matches(message: dict[str, Any], query: dict[str, str]) -> bool:
    """Whether a stored message passes Twilio's list filters."""
    if "To" in query and message["to"] != query["To"]:
        return False
    if "From" in query and message["from"] != query["From"]:
        return False
    sent_text = message.get("date_sent")
    filters = [key for key in ("DateSent", "DateSent<", "DateSent>") if key in query]
    if not filters:
        return True
    if not sent_text:
        return False
    sent = datetime.strptime(sent_text, "%a, %d %b %Y %H:%M:%S %z")
    for key in filters:
        bound = _moment(query[key])
        if key == "DateSent" and sent.date() != bound.date():
            return False
        if key == "DateSent<" and sent > bound:
            return False
        if key == "DateSent>" and sent < bound:
            return False
    return True
