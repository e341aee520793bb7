"""Talk to Rasa's REST channel: one turn per call, replies as `Reply` objects."""

from __future__ import annotations

from typing import Any

import httpx

from bot.channels.base import Button, Reply

WEBHOOK_PATH = "/webhooks/rest/webhook"
RETRYABLE_STATUS = {408, 409, 425, 429}


class RasaUnavailableError(Exception):
    """Rasa could not take the message now (down, timeout, 5xx): try again later."""


class RasaRejectedError(Exception):
    """Rasa refused the message itself (4xx, unreadable answer): retrying won't help."""


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
    """An HTTP client for one Rasa server; create it inside the running loop."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self._url = base_url.rstrip("/") + WEBHOOK_PATH
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0))
        )

    async def send(
        self, sender: str, text: str, metadata: dict[str, Any] | None = None
    ) -> list[Reply]:
        """Hand one message to Rasa under the pseudonym `sender`; return its replies.

        Raises RasaUnavailableError (retry later) or RasaRejectedError (give up).
        """
        body = {"sender": sender, "message": text, "metadata": metadata or {}}
        try:
            response = await self._client.post(self._url, json=body)
        except httpx.HTTPError as exc:
            raise RasaUnavailableError(type(exc).__name__) from exc
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUS:
            raise RasaUnavailableError(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise RasaRejectedError(f"HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError as exc:
            raise RasaUnavailableError("the answer is not JSON") from exc
        return parse_replies(data)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
