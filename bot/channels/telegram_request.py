"""python-telegram-bot's HTTP transport on aiohttp, and what a failed request proves.

`Bot` talks to the Bot API through a `telegram.request.BaseRequest`; the default,
httpx, costs several times aiohttp's CPU per request on the gateway's hot path
(`docs/benchmarks.md`, "Gateway speed"), and aiohttp is already installed with
Rasa. This is PTB's documented extension point: the `Bot`, its parameters, its
answers and its errors stay PTB's own.

Whether a failed request may have reached Telegram decides whether a send may
be repeated (`bot.channels.telegram.never_arrived`). aiohttp's tracing marks the
moment a request's headers were written; an error before that (connection
refused, a connect or pool timeout) provably sent nothing and is raised as
PTB's `NetworkError`/`TimedOut` caused by `RequestNotSentError`
(`bot.channels.request_tracing`). Any later error (no
answer in time, the connection lost mid-response) may have delivered the
message.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.channels.form_body import FORM_CONTENT_TYPE, urlencoded
from bot.channels.request_tracing import (
    KEEPALIVE_SECONDS,
    not_sent,
    request_context,
    sent_tracing,
    was_sent,
)

USER_AGENT = "prakerja-assistant (python-telegram-bot, aiohttp)"


def _seconds(value: object, default: float | None) -> float | None:
    """A PTB timeout argument: DEFAULT_NONE means this transport's default."""
    if isinstance(value, (int, float)) or value is None:
        return None if value is None else float(value)
    return default


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` on one aiohttp session with at most `pool_size` connections."""

    def __init__(self, pool_size: int = 8, timeout: float = 10.0) -> None:
        self._pool_size = max(1, pool_size)
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default seconds to wait for an answer."""
        return self._timeout

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._pool_size, keepalive_timeout=KEEPALIVE_SECONDS
                ),
                trace_configs=[sent_tracing(marks=True)],
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def initialize(self) -> None:
        """Open the connection pool (also done on first use)."""
        self._client()

    async def shutdown(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One request; its status and body. Errors as PTB's own transport
        raises them, caused by `RequestNotSentError` when nothing left."""
        connect = _seconds(connect_timeout, self._timeout)
        pool = _seconds(pool_timeout, self._timeout)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=_seconds(read_timeout, self._timeout),
        )
        context = request_context()
        try:
            body, headers = _body(request_data)
            async with self._client().request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=timeout,
                trace_request_ctx=context,
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            cause: BaseException = exc if was_sent(context) else not_sent(exc)
            name = f"aiohttp.{type(exc).__name__}"
            if isinstance(exc, asyncio.TimeoutError):
                raise TimedOut(f"{name}: no answer in time") from cause
            raise NetworkError(f"{name}: {exc}") from cause


def _body(request_data: RequestData | None) -> tuple[Any, dict[str, str] | None]:
    """The body and its headers: form fields urlencoded, or multipart with the
    files when there are any."""
    if request_data is None:
        return None, None
    fields = request_data.json_parameters
    files = request_data.multipart_data
    if not files:
        return urlencoded(fields), {"Content-Type": FORM_CONTENT_TYPE}
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    for name, part in files.items():
        filename, content, *rest = part
        form.add_field(
            name,
            content,
            filename=filename,
            content_type=rest[0] if rest else None,
        )
    return form, None
