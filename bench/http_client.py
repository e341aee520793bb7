"""The benchmarks' HTTP client: aiohttp with kept connections.

The load generator shares the machine's two cores with what it measures, so its
own cost per request counts against the figures. httpx's connection pool looks
at every pooled connection's socket on each request (`has_expired`): with 50
people in flight that was two thirds of the load generator's CPU in a sampling
profile of `make bench-e2e` (docs/benchmarks.md, eighth session). aiohttp, which
Rasa already pins, keeps its idle connections in a queue per host instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

KEEPALIVE_SECONDS = 2.0
"""Idle seconds a connection is kept: below the servers' own limits (uvicorn 5 s,
Sanic 5 s), so that no request goes out on a connection the server is closing."""

TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)
"""What a request raises when it got no HTTP answer."""


def client_session(
    timeout: float, base_url: str | None = None, connections: int = 0
) -> aiohttp.ClientSession:
    """A session of at most `connections` connections (0: no cap), each request
    bounded by `timeout` seconds; made inside the event loop that will use it."""
    return aiohttp.ClientSession(
        base_url=base_url,
        connector=aiohttp.TCPConnector(
            limit=connections, keepalive_timeout=KEEPALIVE_SECONDS
        ),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


async def post_status(
    session: aiohttp.ClientSession,
    url: str,
    *,
    data: bytes | Mapping[str, str] | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
) -> int:
    """POST and read the answer; its status, or 0 when no answer came."""
    try:
        async with session.post(url, data=data, json=json, headers=headers) as answer:
            await answer.read()
            return answer.status
    except TRANSPORT_ERRORS:
        return 0
