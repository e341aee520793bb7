"""Talk to Rasa's gateway channel: one turn per call, replies as `Reply` objects.

The channel (`bot.rasa_channel`, configured in credentials.yml) answers like
Rasa's REST channel plus whether every action of the turn ran. Failures come in
three kinds, because the worker treats them differently: `RasaUnavailableError`
(nobody answers: Rasa or the action server is down or overloaded; waited out
without limit), `RasaTurnError` (Rasa took the message but the turn failed, took
too long, or an action of it failed: `IncompleteTurnError`; retried a few times,
since the message itself may be the cause) and `RasaRejectedError` (retrying
cannot help). The replies of an incomplete turn are dropped: the whole turn is
retried, so the person never gets half of it.

The HTTP client is aiohttp's (already installed with Rasa): on the gateway's hot
path it costs a fraction of httpx's per request (`docs/benchmarks.md`, "Gateway
speed"). Whether a failed request may have reached Rasa is told by aiohttp's
own tracing: an error before the request's headers were written (no connection,
a connect or pool timeout) means nothing was processed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from bot.channels.base import Button, Reply
from bot.channels.request_tracing import (
    KEEPALIVE_SECONDS,
    request_context,
    sent_tracing,
    was_sent,
)
from bot.launcher import RASA_READY_PATH

WEBHOOK_PATH = "/webhooks/gateway/webhook"
# Nobody took the message: overloaded (429) or a proxy found no Rasa (502, 503).
UNAVAILABLE_STATUS = {429, 502, 503}
# The turn was tried and failed or timed out (5xx, 408, 504...): retried a few times.
TURN_ERROR_STATUS = {408, 409, 425}
PROBE_TIMEOUT = 2.0
"""Seconds `RasaClient.reachable` waits for any answer."""


class RasaUnavailableError(Exception):
    """Rasa (or its action server) cannot take messages now: try again later."""


class RasaTurnError(Exception):
    """The turn failed or timed out inside Rasa: retry a few times, then give up."""


class IncompleteTurnError(RasaTurnError):
    """Rasa answered, but an action of the turn failed (its replies are lost)."""

    def __init__(self, failed_actions: list[str]) -> None:
        self.failed_actions = failed_actions
        super().__init__("actions failed: " + ", ".join(failed_actions)[:200])


class RasaRejectedError(Exception):
    """Rasa refused the message itself (4xx, unreadable answer): retrying won't help."""


def parse_turn(data: Any) -> list[Reply]:
    """The replies of the gateway channel's answer (a plain REST list is read as
    a complete turn); IncompleteTurnError when an action of the turn failed."""
    if isinstance(data, dict):
        if data.get("complete") is not True:
            failed = data.get("failed_actions")
            names = [str(n) for n in failed] if isinstance(failed, list) else []
            raise IncompleteTurnError(names or ["unknown"])
        data = data.get("replies")
    return parse_replies(data)


def parse_replies(data: Any) -> list[Reply]:
    """Turn Rasa's REST answer into replies; entries without content are dropped."""
    if not isinstance(data, list):
        raise RasaRejectedError("the answer is not a list")
    replies = []
    for item in data:
        if not isinstance(item, dict):
            continue
        buttons = tuple(
            Button(title=str(b.get("title", "")), payload=str(b.get("payload", "")))
            for b in item.get("buttons") or []
            if isinstance(b, dict) and b.get("payload") is not None
        )
        text = item.get("text") or ""
        image = item.get("image")
        if text or buttons or image:
            replies.append(
                Reply(text=str(text), buttons=buttons, image_url=image or None)
            )
    return replies


class RasaClient:
    """An HTTP client for one Rasa server, used from one event loop."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self._ready = base_url.rstrip("/") + RASA_READY_PATH
        self._url = base_url.rstrip("/") + WEBHOOK_PATH
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._session: aiohttp.ClientSession | None = None

    @property
    def _client(self) -> aiohttp.ClientSession:
        """The connection pool, made on first use inside the running loop."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                trace_configs=[sent_tracing()],
                connector=aiohttp.TCPConnector(
                    limit=0, keepalive_timeout=KEEPALIVE_SECONDS
                ),
                json_serialize=_dumps,
            )
        return self._session

    async def send(
        self, sender: str, text: str, metadata: dict[str, Any] | None = None
    ) -> list[Reply]:
        """Hand one message to Rasa under the pseudonym `sender`; return its replies.

        Raises RasaUnavailableError, RasaTurnError (IncompleteTurnError when an
        action failed) or RasaRejectedError.
        """
        body = {"sender": sender, "message": text, "metadata": metadata or {}}
        context = request_context()
        try:
            async with self._client.post(
                self._url, json=body, trace_request_ctx=context
            ) as response:
                status = response.status
                if status in UNAVAILABLE_STATUS:
                    raise RasaUnavailableError(f"HTTP {status}")
                if status >= 500 or status in TURN_ERROR_STATUS:
                    raise RasaTurnError(f"HTTP {status}")
                if status >= 400:
                    raise RasaRejectedError(f"HTTP {status}")
                raw = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            if not was_sent(context):  # nothing reached Rasa: nothing was processed
                raise RasaUnavailableError(type(exc).__name__) from exc
            raise RasaTurnError(type(exc).__name__) from exc  # timeout, dropped
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RasaTurnError("the answer is not JSON") from exc
        return parse_turn(data)

    async def reachable(self, timeout: float = PROBE_TIMEOUT) -> bool:
        """Whether Rasa's server is ready now (its readiness route answers any
        status but "unavailable" or a server error): after a failed turn, tells
        a Rasa that died, is swamped or is still loading its model from a turn
        that failed on its own."""
        try:
            async with self._client.get(
                self._ready,
                timeout=aiohttp.ClientTimeout(total=timeout),
                trace_request_ctx=request_context(),
            ) as response:
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False
        return status < 500 and status not in UNAVAILABLE_STATUS

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
