"""Inside Rasa: keep the connections to the action server open between calls.

Rasa 3.6 makes a new aiohttp client session for every request to an endpoint
(`EndpointConfig.request` opens `EndpointConfig.session()` and closes it), so
every custom action call opens a TCP connection to the action server and closes
it again, and the action server sets up and tears down a connection per call.
`install` makes `session()` hand out one session per endpoint and event loop,
kept open, whose connections are reused: the same headers, authentication and
timeout as Rasa's, and the caller's `async with` no longer closes it.

A connection left idle is closed by the client after `IDLE_SECONDS`, before the
action server would close it (Sanic's keep-alive: 5 s by default, 30 s as this
project starts it), so a reused connection is not one the server is closing. An
action server that died takes its connections with it: the next call fails as a
refused connection did before (the gateway runs the turn again, replayed by the
effect ledger), and the call after it connects anew.

The kept session writes the request bodies (the tracker, 20-25 KB at the end
of a session, and 45 KB with the domain for a form's validation) with orjson,
which decodes to the same JSON as the standard library's `json.dumps`
(aiohttp's default) and writes a 45 KB body in about a seventh of ujson's time
(0.027 against 0.199 ms). What orjson refuses (an integer beyond 64 bits, a
type it does not know) is written by ujson, as before; keys that are not
strings become strings, as with ujson. The action server reads the bodies
with Sanic's ujson as before: orjson would read an integer beyond 64 bits as
a float, and reads a 45 KB body only a third faster.
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType
from typing import Any

import aiohttp
import orjson
import ujson
from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

IDLE_SECONDS = 4.0
"""How long an idle connection to an endpoint is kept open (under Sanic's 5 s)."""

_RASA_SESSION = EndpointConfig.session
_OPEN: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop,
    dict[int, tuple[EndpointConfig, aiohttp.ClientSession]],
] = weakref.WeakKeyDictionary()
"""Per event loop, per endpoint (by id, the endpoint held so that its id is
not reused: Rasa keeps one per kind for the server's life), its kept-open
session."""


class KeptSession:
    """What `async with endpoint.session()` gives: the endpoint's kept-open
    session, left open on exit."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self.session

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        return None


def _new_session(endpoint: EndpointConfig) -> aiohttp.ClientSession:
    """A session configured as Rasa's, whose idle connections close early."""
    auth = None
    if endpoint.basic_auth:
        auth = aiohttp.BasicAuth(
            endpoint.basic_auth["username"], endpoint.basic_auth["password"]
        )
    return aiohttp.ClientSession(
        headers=endpoint.headers,
        auth=auth,
        timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
        connector=aiohttp.TCPConnector(keepalive_timeout=IDLE_SECONDS),
        json_serialize=body_text,
    )


_ORJSON_LENIENT = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
"""What orjson needs for keys that are not strings and NumPy numbers (slower:
tried only when the plain call refuses)."""


def body_text(value: Any) -> str:
    """A request body as JSON text: orjson's, or ujson's for what orjson refuses."""
    for option in (None, _ORJSON_LENIENT):
        try:
            return orjson.dumps(value, option=option).decode()
        except TypeError:  # orjson.JSONEncodeError is one
            continue
    return str(ujson.dumps(value))


def kept_session(self: EndpointConfig) -> Any:
    """`EndpointConfig.session`, kept open per endpoint and event loop (Rasa's
    own when called outside an event loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _RASA_SESSION(self)
    sessions = _OPEN.setdefault(loop, {})
    kept = sessions.get(id(self))
    if kept is None or kept[1].closed:
        kept = sessions[id(self)] = (self, _new_session(self))
    return KeptSession(kept[1])


async def close_kept_sessions() -> None:
    """Close the sessions kept open for the running event loop (at shutdown)."""
    sessions = _OPEN.pop(asyncio.get_running_loop(), {})
    for _, session in sessions.values():
        await session.close()


def install() -> None:
    """Make Rasa reuse its connections to each endpoint (idempotent)."""
    EndpointConfig.session = kept_session
