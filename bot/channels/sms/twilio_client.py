"""Send SMS bodies through Twilio's REST API with the official client.

The sync client runs in the sender's own thread pool (never the loop's default one,
where database calls wait: a send queued there could outlive the outbox's patience
and then go out twice), with a timeout on every request; the pool has a thread for
every send in flight, so a send never waits for a thread. ``TWILIO_API_URL`` points
it elsewhere (a local fake in tests and benchmarks): requests for Twilio's API host
are rewritten to that base URL. Error messages from Twilio can quote the phone
number, so only the HTTP status and Twilio's error code are kept.

A send that got no answer although the request may have gone out (read timeout,
connection dropped mid-response) is reported as `unknown`; one whose connection
never opened (refused, connect timeout) as a plain failure. `lookup` lists the
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
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from requests import RequestException
from requests.adapters import HTTPAdapter
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError

from bot.channels.base import SMS, LookupResult, SendResult
from bot.channels.pacing import PACED, Pacer, RateLimiter
from bot.channels.sms.gsm7 import to_gsm7
from bot.settings import Settings

logger = logging.getLogger(__name__)

R = TypeVar("R")

DEFAULT_API_URL = "https://api.twilio.com"
REQUEST_TIMEOUT = 10.0
DEFAULT_WORKERS = 16
STATUS_PATH = "/sms/status"
MAX_PACING_WAIT = 1.0
"""Seconds a send may wait for its turn in its slot; longer: rescheduled."""
LOOKUP_LIMIT = 50
"""Messages listed at most per lookup (one page): to one person in minutes."""

# Twilio error codes that no retry can fix (the outbox gives up on them).
UNSUBSCRIBED = 21610
INVALID_NUMBERS = frozenset({21211, 21614})


class RedirectingHttpClient(TwilioHttpClient):
    """`TwilioHttpClient` that can send API requests to another base URL.

    It also remembers, per thread, the headers of the last response so a 429's
    Retry-After can be read after the client raised, and keeps `pool_size`
    connections open (requests keeps 10: with more sends at once, every extra
    one opened and dropped a connection, "Connection pool is full").
    """

    def __init__(self, api_url: str, timeout: float, pool_size: int = 10) -> None:
        super().__init__(timeout=timeout)
        if self.session is not None:
            adapter = HTTPAdapter(pool_maxsize=max(1, pool_size))
            self.session.mount("https://", adapter)
            self.session.mount("http://", adapter)
        target = urlsplit(api_url)
        self._target = None if api_url == DEFAULT_API_URL else target
        self._last = threading.local()

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

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send the request to the configured base URL; remember its headers."""
        self._last.headers = {}
        response = super().request(
            method,
            self._rewrite(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        self._last.headers = dict(response.headers or {})
        return response

    def last_headers(self) -> dict[str, str]:
        """Headers of this thread's last response ({} if none)."""
        headers: dict[str, str] = getattr(self._last, "headers", {})
        return headers


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


def never_sent(error: Exception) -> bool:
    """Whether a transport error happened before any byte of the request left
    (refused connection, connect timeout, unknown host): sending again is safe."""
    if isinstance(error, ConnectTimeout):
        return True
    if isinstance(error, RequestsConnectionError) and error.args:
        reason = getattr(error.args[0], "reason", None)
        return isinstance(reason, ConnectTimeoutError)  # NewConnectionError too
    return False


class TwilioSender:
    """`bot.channels.base.Sender` for SMS through Twilio's Messages API."""

    channel = SMS

    def __init__(
        self,
        settings: Settings,
        timeout: float = REQUEST_TIMEOUT,
        workers: int = DEFAULT_WORKERS,
        limiter: Pacer | None = None,
        max_wait: float = MAX_PACING_WAIT,
    ) -> None:
        """`workers`: threads for sends, at least the sends the outbox runs at once.

        `limiter` paces the sender number (default: within this process, at
        TWILIO_MESSAGES_PER_SECOND, or not at all when it is unset); a wait
        longer than `max_wait` seconds is returned as retry_after instead of
        holding a send slot."""
        if not settings.twilio_enabled or not settings.twilio_from_number:
            raise ValueError(
                "TwilioSender needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
                "TWILIO_FROM_NUMBER"
            )
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
        self._workers = max(1, workers)
        self._executor: ThreadPoolExecutor | None = None
        self._from = settings.twilio_from_number
        rate = settings.twilio_per_second
        self._limiter: Pacer | None = limiter or (
            RateLimiter(overall_per_second=rate, overall_burst=rate) if rate else None
        )
        self._max_wait = max_wait
        self._status_callback = settings.public_base_url + STATUS_PATH
        self._http = RedirectingHttpClient(
            settings.twilio_api_url, timeout, pool_size=self._workers
        )
        self._client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=self._http,
        )

    def _send(self, address: str, text: str) -> SendResult:
        """Blocking send; runs in a worker thread."""
        try:
            message = self._client.messages.create(
                to=address,
                from_=self._from,
                body=text,
                status_callback=self._status_callback,
            )
        except TwilioRestException as error:
            result = result_for_error(error, self._http.last_headers())
            logger.warning("Twilio refused a message: %s", result.error)
            return result
        except (RequestException, TwilioException) as error:
            name = type(error).__name__
            if never_sent(error):
                logger.warning("Twilio unreachable: %s", name)
                return SendResult(ok=False, error=f"twilio unreachable: {name}")
            logger.warning("Twilio send outcome unknown: %s", name)
            return SendResult(
                ok=False, unknown=True, error=f"twilio no answer: {name}"
            )
        logger.info("Twilio accepted message %s", message.sid)
        return SendResult(ok=True, provider_message_id=message.sid)

    def _lookup(self, address: str, text: str, since: datetime) -> LookupResult:
        """Blocking lookup; runs in a worker thread."""
        since = since.replace(tzinfo=timezone.utc)
        try:
            messages = self._client.messages.list(
                to=address,
                from_=self._from,
                date_sent_after=since,
                limit=LOOKUP_LIMIT,
            )
        except TwilioRestException as error:
            return LookupResult(error=f"twilio {error.status} code {error.code}")
        except (RequestException, TwilioException) as error:
            return LookupResult(error=f"twilio unreachable: {type(error).__name__}")
        found = sorted(
            (message.date_created or since, message.sid)
            for message in messages
            if message.body == text
            and message.sid
            and (message.date_created is None or message.date_created >= since)
        )
        return LookupResult(ids=tuple(str(sid) for _, sid in found))

    async def _in_pool(self, function: Callable[..., R], *args: Any) -> R:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self._workers, thread_name_prefix="twilio-send"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def lookup(
        self,
        address: str,
        body: dict[str, Any],
        since: datetime,
        after: str | None = None,
        started: datetime | None = None,
    ) -> LookupResult:
        """Messages Twilio holds to `address` from our number with this body, sent
        at or after `since` (naive UTC), oldest first (`after` is not needed:
        Twilio lists what it sent)."""
        text = to_gsm7(str(body.get("text") or ""))
        return await self._in_pool(self._lookup, address, text, since)

    async def send(self, address: str, body: dict[str, Any]) -> SendResult:
        """Send one rendered body ({"kind": "sms", "text": ...}) to a number."""
        text = to_gsm7(str(body.get("text") or ""))
        if body.get("kind") != "sms" or not text:
            return SendResult(ok=False, permanent=True, error="not an SMS body")
        if self._limiter is not None:
            wait = await self._limiter.wait(None, self._max_wait)
            if wait > 0:
                return SendResult(ok=False, retry_after=wait, error=PACED)
        return await self._in_pool(self._send, address, text)

    async def close(self) -> None:
        """Let sends in flight finish, then close the HTTP connection pool (a later
        send opens new ones)."""
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: executor.shutdown(wait=True)
            )
        if self._http.session is not None:
            self._http.session.close()
