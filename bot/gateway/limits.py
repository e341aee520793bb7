"""Request body limits, applied before any work (pure ASGI middleware).

Every POST the gateway takes is small: Twilio's parameters (an SMS of at most
1600 characters, percent-encoded, under 20 KiB), the console's forms (a note of
at most 4000 characters, under 50 KiB even percent-encoded), a login, the
simulator's JSON. So 64 KiB is the limit everywhere, except Telegram's webhook:
an update carries a message of up to 4096 characters with its entities and the
message it replies to (tens of KiB), and Telegram delivers a refused update
again and again, so it gets 1 MiB; its secret token is checked before its body
is read.

A declared Content-Length over the limit is answered 413 before a byte is read;
a body without one (chunked) is read only until it passes the limit, then 413.
Nothing is buffered here: bytes are only counted as the app pulls them.
Starlette has no such limit of its own, and uvicorn only caps the header size.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
DEFAULT_BODY_LIMIT = 64 * KIB
BODY_LIMITS: Mapping[str, int] = {"/telegram/webhook": 1024 * KIB}
"""Paths with a limit other than the default (exact paths)."""


def body_limit(path: str) -> int:
    """The largest body, in bytes, a request to `path` may have."""
    return BODY_LIMITS.get(path, DEFAULT_BODY_LIMIT)


class BodyTooLargeError(Exception):
    """The body passed its limit while the app was reading it."""


class BodyLimit:
    """ASGI middleware: refuse request bodies over their path's limit (413)."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap `app`."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count what the app reads."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(str(scope.get("path", "")))
        declared = Headers(scope=scope).getlist("content-length")
        if declared:
            value = declared[0].strip()
            if len(declared) > 1 or not value.isdigit():
                await _refuse(scope, receive, send, 400, "bad content-length")
                return
            if int(value) > limit:
                await _refuse(scope, receive, send, 413, "body too large")
                return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLargeError:
            if not started:
                await _refuse(scope, receive, send, 413, "body too large")


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, error: str
) -> None:
    response = JSONResponse(
        {"error": error}, status_code=status, headers={"Connection": "close"}
    )
    await response(scope, receive, send)
