"""Send SMS bodies through Twilio's REST API with the official client.

The client is the official one in its async form (`create_async`, `list_async`)
on an aiohttp session of our own (`AsyncRedirectingClient`: twilio's
`AsyncHttpClient` interface), with a timeout on every request: no thread per send,
and a fraction of the sync client's CPU per request. ``TWILIO_API_URL`` points it
elsewhere (a local fake in tests and benchmarks): requests for Twilio's API host
are rewritten to that base URL. Error messages from Twilio can quote the phone
number, so only the HTTP status and Twilio's error code are kept.

A send that got no answer although the request may have gone out (read timeout,
connection dropped mid-response) is reported as `unknown`; one whose request
never left (refused, connect timeout: aiohttp's tracing saw no headers written)
as a plain failure. `lookup` lists the
messages sent to a number from our number since a moment (Twilio's
``GET /Messages.json`` with ``To``, ``From`` and ``DateSent>``) and keeps those
with the same body, so the outbox adopts a message Twilio already has instead of
sending it twice. Twilio sets DateSent when it hands a message on; the outbox
looks up only after the attempt's own timeout has passed.

With TWILIO_MESSAGES_PER_SECOND set, sends are paced per sender number
(`bot.channels.pacing`: shared by every process through Redis when configured):
a wait longer than `max_wait` is handed back as retry_after, and the outbox
reschedules the row. Unset, nothing is paced here (Twilio queues what exceeds
the number's rate, and delivers it late).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from datetime import datetime, timezone
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.channels.base import (
    REQUEST_IN_FLIGHT,
    SMS,
    LookupResult,
    SendResult,
)
from bot.channels.form_body import FORM_CONTENT_TYPE, urlencoded
from bot.channels.pacing import PACED, Pacer, RateLimiter
from bot.channels.request_tracing import (
    KEEPALIVE_SECONDS,
    RequestNotSentError,
    request_context,
    sent_tracing,
    was_sent,
)
from bot.channels.sms.gsm7 import to_gsm7
from bot.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.twilio.com"
REQUEST_TIMEOUT = 10.0
STATUS_PATH = "/sms/status"
MAX_PACING_WAIT = 1.0
"""Seconds a send may wait for its turn in its slot; longer: rescheduled."""
LOOKUP_LIMIT = 50
"""Messages listed at most per lookup (one page): to one person in minutes."""

# Twilio error codes that no retry can fix (the outbox gives up on them).
UNSUBSCRIBED = 21610
INVALID_NUMBERS = frozenset({21211, 21614})

_last_headers: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "twilio_last_headers", default=None
)


class AsyncRedirectingClient(AsyncHttpClient):
    """twilio's async HTTP client interface on one aiohttp session, able to send
    API requests to another base URL. The headers of the last response are kept
    for the calling task (a 429's Retry-After is read after the client raised);
    a request that never left raises `RequestNotSentError`."""

    def __init__(self, api_url: str, timeout: float) -> None:
        super().__init__(logger, is_async=True, timeout=timeout)
        target = urlsplit(api_url)
        self._target = None if api_url == DEFAULT_API_URL else target
        self._session: aiohttp.ClientSession | None = None

    def _rewrite(self, url: str) -> str:
        if self._target is None:
            return url
        parts = urlsplit(url)
        if not (parts.hostname or "").endswith("twilio.com"):
            return url
        base_path = self._target.path.rstrip("/")
        return urlunsplit(
            (
                self._target.scheme,
                self._target.netloc,
                base_path + parts.path,
                parts.query,
                parts.fragment,
            )
        )

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send the request to the configured base URL; remember its headers."""
        _last_headers.set({})
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
                trace_configs=[sent_tracing(marks=True)],
            )
        seconds = timeout or self.timeout or REQUEST_TIMEOUT
        context = request_context()
        body = None
        if data is not None:
            body = urlencoded(data)
            headers = {**(headers or {}), "Content-Type": FORM_CONTENT_TYPE}
        try:
            async with self._session.request(
                method.upper(),
                self._rewrite(uri),
                params=cast(Any, params),
                data=body,
                headers=headers,
                auth=None if auth is None else aiohttp.BasicAuth(*auth),
                timeout=aiohttp.ClientTimeout(total=seconds),
                allow_redirects=allow_redirects,
                trace_request_ctx=context,
            ) as response:
                text = await response.text()
                _last_headers.set(dict(response.headers))
                return Response(response.status, text, dict(response.headers))
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            if not was_sent(context):
                raise RequestNotSentError(type(exc).__name__) from exc
            raise

    async def close(self) -> None:
        """Close the connection pool (a later request opens a new one)."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def last_headers() -> dict[str, str]:
    """Headers of this task's last Twilio response ({} if none)."""
    return _last_headers.get() or {}


def _retry_after(headers: dict[str, str]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(float(value), 0.0)
            except ValueError:
                return None
    return None


def result_for_error(error: TwilioRestException, headers: dict[str, str]) -> SendResult:
    """Map a Twilio API error to what the outbox should do next.

    429: wait (Retry-After when given) and retry; 5xx and 401 (credentials
    being fixed): retry with backoff; 21610 (recipient unsubscribed), 21211 and
    21614 (invalid or non-mobile number) and every other 4xx: permanent.
    """
    status, code = error.status, error.code
    label = f"twilio {status} code {code}"
    if status == 429:
        return SendResult(ok=False, retry_after=_retry_after(headers), error=label)
    if status >= 500 or status == 401:
        return SendResult(ok=False, error=label)
    if code == UNSUBSCRIBED:
        label += " (recipient unsubscribed)"
    elif code in INVALID_NUMBERS:
        label += " (invalid number)"
    return SendResult(ok=False, permanent=True, error=label)


class TwilioSender:
    """`bot.channels.base.Sender` for SMS through Twilio's Messages API."""

    channel = SMS
    request_in_flight = REQUEST_IN_FLIGHT
    """Seconds a request may still land after it left (`Lookup`)."""
    marks_requests = True
    """Its transport awaits `request_may_leave` before each request's bytes."""

    def __init__(
        self,
        settings: Settings,
        timeout: float = REQUEST_TIMEOUT,
        limiter: Pacer | None = None,
        max_wait: float = MAX_PACING_WAIT,
    ) -> None:
        """`limiter` paces the sender number (default: within this process, at
        TWILIO_MESSAGES_PER_SECOND, or not at all when it is unset); a wait
        longer than `max_wait` seconds is returned as retry_after instead of
        holding a send slot."""
        if not settings.twilio_enabled or not settings.twilio_from_number:
            raise ValueError(
                "TwilioSender needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
                "TWILIO_FROM_NUMBER"
            )
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
        logging.getLogger("twilio.async_http_client").setLevel(logging.WARNING)
        self._from = settings.twilio_from_number
        rate = settings.twilio_per_second
        self._limiter: Pacer | None = limiter or (
            RateLimiter(overall_per_second=rate, overall_burst=rate) if rate else None
        )
        self._max_wait = max_wait
        self._status_callback = settings.public_base_url + STATUS_PATH
        self._http = AsyncRedirectingClient(settings.twilio_api_url, timeout)
        self._client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=self._http,
        )

    async def _send(self, address: str, text: str) -> SendResult:
        try:
            message = await self._client.messages.create_async(
                to=address,
                from_=self._from,
                body=text,
                status_callback=self._status_callback,
            )
        except TwilioRestException as error:
            result = result_for_error(error, last_headers())
            logger.warning("Twilio refused a message: %s", result.error)
            return result
        except (aiohttp.ClientError, asyncio.TimeoutError, TwilioException) as error:
            name = type(error).__name__
            logger.warning("Twilio send outcome unknown: %s", name)
            return SendResult(ok=False, unknown=True, error=f"twilio no answer: {name}")
        except RequestNotSentError as error:
            name = type(error.__cause__ or error).__name__
            logger.warning("Twilio unreachable: %s", name)
            return SendResult(ok=False, error=f"twilio unreachable: {name}")
        logger.debug("Twilio accepted message %s", message.sid)
        return SendResult(ok=True, provider_message_id=message.sid)

    async def lookup(
        self,
        address: str,
        body: dict[str, Any],
        since: datetime,
        after: str | None = None,
    ) -> LookupResult:
        """Messages Twilio holds to `address` from our number with this body, sent
        at or after `since` (naive UTC), oldest first (`after` is not needed:
        Twilio lists what it sent). A request may still be on its way, or being
        handled, when the list comes back without it (`request_in_flight`)."""
        text = to_gsm7(str(body.get("text") or ""))
        since = since.replace(tzinfo=timezone.utc)
        try:
            messages = await self._client.messages.list_async(
                to=address,
                from_=self._from,
                date_sent_after=since,
                limit=LOOKUP_LIMIT,
            )
        except TwilioRestException as error:
            return LookupResult(error=f"twilio {error.status} code {error.code}")
        except (
            aiohttp.ClientError,
            asyncio.TimeoutError,
            TwilioException,
            RequestNotSentError,
        ) as error:
            return LookupResult(error=f"twilio unreachable: {type(error).__name__}")
        found = sorted(
            (message.date_created or since, message.sid)
            for message in messages
            if message.body == text
            and message.sid
            and (message.date_created is None or message.date_created >= since)
        )
        return LookupResult(ids=tuple(str(sid) for _, sid in found))

    async def send(self, address: str, body: dict[str, Any]) -> SendResult:
        """Send one rendered body ({"kind": "sms", "text": ...}) to a number."""
        text = to_gsm7(str(body.get("text") or ""))
        if body.get("kind") != "sms" or not text:
            return SendResult(ok=False, permanent=True, error="not an SMS body")
        if self._limiter is not None:
            wait = await self._limiter.wait(None, self._max_wait)
            if wait > 0:
                return SendResult(ok=False, retry_after=wait, error=PACED)
        return await self._send(address, text)

    async def close(self) -> None:
        """Close the HTTP connection pool (a later send opens a new one)."""
        await self._http.close()
