"""A local fake of Twilio's REST API (Messages resource) for tests and benchmarks.

Runs Starlette under uvicorn in a background thread on a free 127.0.0.1 port.
Point the real client at it with ``TWILIO_API_URL=<fake.url>``. It checks HTTP
basic auth, answers like Twilio (201 with the Message JSON, or Twilio's error
JSON), records every call, and can be told to fail the next calls.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.channels.sms.gsm7 import segment_info
from tests.fakes.server import BackgroundServer

API_VERSION = "2010-04-01"
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
        self, account_sid: str = "AC" + "0" * 32, auth_token: str = "test-auth-token"
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.calls: list[Call] = []
        self._failures: list[Failure] = []
        self._delays: list[float] = []
        self._lock = threading.Lock()
        app = Starlette(
            routes=[
                Route(
                    "/2010-04-01/Accounts/{account_sid}/Messages.json",
                    self._create_message,
                    methods=["POST"],
                )
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

    def slow_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Delay the answer to the next ``count`` calls (to test timeouts)."""
        with self._lock:
            self._delays.extend([seconds] * count)

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
        if delay:
            await asyncio.sleep(delay)
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
        self._record(Call(account_sid, params, 201, sid=sid, headers=headers))
        return JSONResponse(self._message_json(account_sid, sid, params), 201)

    @staticmethod
    def _message_json(
        account_sid: str, sid: str, params: dict[str, str]
    ) -> dict[str, Any]:
        now = formatdate(usegmt=True).replace("GMT", "+0000")
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
