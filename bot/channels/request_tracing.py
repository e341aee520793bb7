"""Did an HTTP request leave? aiohttp's tracing marks when its headers were written.

For the providers' transports (`sent_tracing(marks=True)`), once a request's
connection is obtained, right before its bytes are written, the tracing also
awaits `bot.channels.base.request_may_leave`: the outbox marks there that a
send's request is leaving (`bot.gateway.send_marks`), as late as a hook can.

A send may be repeated only when the provider provably never got it. An error
raised before the request's headers were written (connection refused, a connect
or pool timeout) sent nothing; any later one (no answer in time, the connection
lost mid-response) may have delivered it. Rasa's client, the Telegram transport
and the Twilio client pass `request_context()` as aiohttp's `trace_request_ctx`
of a session made with `sent_tracing()`, and ask `was_sent` when it fails.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import aiohttp

from bot.channels.base import request_may_leave

KEEPALIVE_SECONDS = 4.0
"""Idle pooled connections are closed after this, before a server that keeps
them 5 s (Sanic's and uvicorn's default) closes them: a request written on a
connection just as its server closes it fails after its headers left, so its
outcome cannot be told (a Rasa turn asked again, a send looked up at the
provider). Seen under `make bench-gateway` with aiohttp's default of 15 s:
Telegram sends whose outcome was unknown (`ClientOSError`), each a stall."""


class RequestNotSentError(Exception):
    """Nothing of the request reached the server; its cause is aiohttp's error."""


class RequestNotMarkedError(RequestNotSentError):
    """The request could not be marked as leaving: it was not made (the outbox
    tries the row again later)."""


async def _connection_ready(session: Any, context: Any, params: Any) -> None:
    await request_may_leave()


async def _headers_sent(session: Any, context: SimpleNamespace, params: Any) -> None:
    context.trace_request_ctx.sent = True


def sent_tracing(marks: bool = False) -> aiohttp.TraceConfig:
    """The trace config that marks a request's context once its headers left;
    with `marks`, a provider's transport, it also lets the outbox mark each
    request as it leaves (no hook for the others, such as Rasa's client)."""
    config = aiohttp.TraceConfig()
    config.on_request_headers_sent.append(cast(Any, _headers_sent))  # stub: wrong type
    if marks:
        config.on_connection_create_end.append(cast(Any, _connection_ready))
        config.on_connection_reuseconn.append(cast(Any, _connection_ready))
    return config


def request_context() -> SimpleNamespace:
    """A fresh context for one request (`trace_request_ctx`)."""
    return SimpleNamespace(sent=False)


def was_sent(context: SimpleNamespace) -> bool:
    """Whether the request's headers were written (it may have arrived)."""
    return bool(context.sent)


def not_sent(error: BaseException) -> RequestNotSentError:
    """`RequestNotSentError` caused by aiohttp's `error`, to raise from."""
    wrapped = RequestNotSentError(type(error).__name__)
    wrapped.__cause__ = error
    return wrapped
