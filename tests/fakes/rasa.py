"""A local fake of Rasa's REST channel (POST /webhooks/rest/webhook) and of our
gateway channel (POST /webhooks/gateway/webhook, `bot.rasa_channel`: the same
replies with `complete` and `failed_actions`).

Runs under uvicorn in a background thread on a free 127.0.0.1 port and records
every message it answered. `down()` stops listening (connections are refused, as
when Rasa restarts) and `up()` listens again on the same port; `fail_with(503)`
answers with an error status instead. Replies come from `replies` (message ->
list of Rasa reply dicts), else `reply` (a function, by default an echo);
`delays` (message -> seconds, else `default_delay`) plus up to `jitter` random
seconds make turns slow. `incomplete` (message -> count) makes that many turns of
the message lose an action, as when the action server dies mid-turn: Rasa still
answers 200 with the replies said before (`partial`, by default none).

    rasa = FakeRasa().start()
    settings = load_settings({..., "RASA_URL": rasa.url})
    ...
    rasa.stop()
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

ReplyFunction = Callable[[str, str, dict[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Received:
    """One message Rasa answered."""

    sender: str
    message: str
    metadata: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


def echo(sender: str, message: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The default turn: one reply repeating the message."""
    return [{"recipient_id": sender, "text": f"Anda menulis: {message}"}]


class FakeRasa(BackgroundServer):
    """Rasa's REST webhook, switchable down and up, recording what it answered."""

    def __init__(self, reply: ReplyFunction = echo) -> None:
        self.reply = reply
        self.replies: dict[str, list[dict[str, Any]]] = {}
        self.delays: dict[str, float] = {}
        self.default_delay = 0.0
        self.jitter = 0.0
        self.incomplete: dict[str, int] = {}
        self.partial: list[dict[str, Any]] = []
        self.failed_action = "action_registration_status"
        self.on_incomplete: Callable[[], None] | None = None
        """Called as an incomplete turn is answered (e.g. to take the action
        server down with it)."""
        self._status: int | None = None
        self.ready_status = 200
        """What the readiness route answers (503: the model still loading)."""
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._refused = 0
        app = Starlette(
            routes=[
                Route("/webhooks/rest/webhook", self._rest, methods=["POST"]),
                Route("/webhooks/gateway/webhook", self._gateway, methods=["POST"]),
                Route("/status", self._health, methods=["GET"]),
                Route("/webhooks/gateway/", self._ready, methods=["GET"]),
            ]
        )
        super().__init__(app, name="FakeRasa", same_port=True)

    def down(self) -> None:
        """Rasa is gone: connections to its port are refused."""
        self.stop()

    def up(self) -> None:
        """Rasa is back, on the same port, answering normally."""
        self._status = None
        if self._server is None:
            self.start()

    def fail_with(self, status: int | None) -> None:
        """Answer every message with this HTTP status (None: answer normally)."""
        self._status = status

    @property
    def received(self) -> list[Received]:
        """Every message answered so far, in the order the answers were sent."""
        with self._lock:
            return list(self._received)

    @property
    def refused(self) -> int:
        """How many messages got an error status (see `fail_with`)."""
        with self._lock:
            return self._refused

    def messages(self, sender: str | None = None) -> list[str]:
        """Texts answered, optionally of one sender only."""
        return [r.message for r in self.received if sender in (None, r.sender)]

    def senders(self) -> set[str]:
        """Every sender id Rasa saw."""
        return {r.sender for r in self.received}

    async def _health(self, request: Request) -> JSONResponse:
        return JSONResponse({"version": "fake"})

    async def _ready(self, request: Request) -> JSONResponse:
        return JSONResponse({"ready": "fake"}, status_code=self.ready_status)

    async def _rest(self, request: Request) -> JSONResponse:
        answer, _ = await self._turn(request)
        return answer if isinstance(answer, JSONResponse) else JSONResponse(answer)

    async def _gateway(self, request: Request) -> JSONResponse:
        answer, failed = await self._turn(request)
        if isinstance(answer, JSONResponse):
            return answer
        return JSONResponse(
            {"replies": answer, "complete": not failed, "failed_actions": failed}
        )

    async def _turn(
        self, request: Request
    ) -> tuple[JSONResponse | list[dict[str, Any]], list[str]]:
        """One turn: an error response, or the replies and the failed actions."""
        data = await request.json()
        sender = str(data.get("sender"))
        message = str(data.get("message"))
        metadata = dict(data.get("metadata") or {})
        if self._status is not None:
            with self._lock:
                self._refused += 1
            error = JSONResponse({"error": "unavailable"}, status_code=self._status)
            return error, []
        delay = self.delays.get(message, self.default_delay)
        delay += random.uniform(0.0, self.jitter)  # noqa: S311
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            self._received.append(Received(sender, message, metadata))
            if self.incomplete.get(message, 0) > 0:
                self.incomplete[message] -= 1
                partial = [{"recipient_id": sender, **r} for r in self.partial]
                if self.on_incomplete is not None:
                    self.on_incomplete()
                return partial, [self.failed_action]
        if message in self.replies:
            answer = [{"recipient_id": sender, **r} for r in self.replies[message]]
        else:
            answer = self.reply(sender, message, metadata)
        return answer, []
