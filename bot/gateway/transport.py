"""Strict-Transport-Security on every response when the public URL is https.

Behind a TLS-terminating proxy the gateway itself sees plain http, so it cannot
tell from the request; PUBLIC_BASE_URL says how browsers reach it. One year,
without includeSubDomains or preload: those commit the operator's other hosts.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=31536000"


class StrictTransportSecurity:
    """ASGI middleware adding the HSTS header to every http response."""

    def __init__(self, app: ASGIApp, enabled: bool = True) -> None:
        """Wrap `app`; `enabled` false (an http public URL) adds nothing."""
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the header to the response's start."""
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_with_hsts)
