"""aiohttp's client requests written in one piece: the headers with the body.

aiohttp 3.9, the last that Rasa 3.6 allows (`aiohttp<3.10`), writes a
request's status line and headers to its socket as soon as they are built,
then its body from another task: two `send` calls, two TCP segments (aiohttp
sets TCP_NODELAY), and the server at the other end woken twice. Every turn
makes such requests: the gateway to Rasa and to Telegram or Twilio, Rasa to
the action server. aiohttp 3.12 keeps the headers until the body's first
bytes and sends them together (aio-libs/aiohttp#10991); `install()` does the
same here, by giving aiohttp's `ClientRequest` a `StreamWriter` whose
headers wait for the first body bytes, the end of the request, or a drain
(a request expecting `100-continue` drains before its body, so its headers
leave at once). aiohttp's maintainers declined an option for a custom writer
(aio-libs/aiohttp#4845), hence the module attribute replaced; `install()`
checks that it replaces aiohttp's own class. aiohttp's
`on_request_headers_sent` trace still fires when the headers are built,
before they are written, as it did: `bot.channels.request_tracing` counts a
request as possibly sent from the same moment.
"""

from __future__ import annotations

from typing import Any

import aiohttp.client_reqrep
from aiohttp.http_writer import StreamWriter, _serialize_headers


class HeadersWithBodyWriter(StreamWriter):
    """A `StreamWriter` that sends the headers with the first bytes after them."""

    _pending_headers: bytes | None = None

    async def write_headers(self, status_line: str, headers: Any) -> None:
        """Build the status line and headers; keep them for the next write."""
        if self._on_headers_sent is not None:
            await self._on_headers_sent(headers)
        self._pending_headers = _serialize_headers(status_line, headers)

    def _write(self, chunk: bytes) -> None:
        pending = self._pending_headers
        if pending is not None:
            self._pending_headers = None
            chunk = pending + chunk
        super()._write(chunk)

    def _send_headers(self) -> None:
        if self._pending_headers is not None:
            self._write(b"")

    async def write_eof(self, chunk: bytes = b"") -> None:
        """End the request (its headers sent first if no bytes follow them)."""
        if not chunk:
            self._send_headers()
        await super().write_eof(chunk)

    async def drain(self) -> None:
        """Send what waits, headers included, then wait for the socket."""
        self._send_headers()
        await super().drain()


def install() -> None:
    """Make every aiohttp client request of this process use
    `HeadersWithBodyWriter` (idempotent)."""
    current = aiohttp.client_reqrep.StreamWriter
    if current is HeadersWithBodyWriter:
        return
    if current is not StreamWriter:
        raise RuntimeError(f"aiohttp's client uses {current!r}, not its StreamWriter")
    aiohttp.client_reqrep.StreamWriter = HeadersWithBodyWriter  # type: ignore[misc]
