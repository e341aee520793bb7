"""The simulator's web routes: the page, sending as a user, reading the chat back.

Messages sent here are stored through the same inbox path as provider webhooks
(`store_inbound`), answered by the same workers, and "sent" from the outbox by the
SimulatorSender; the page then reads the user's and the assistant's messages of
that conversation from the inbox and the outbox.

Sending needs a JSON body with `Content-Type: application/json` and, when the
browser says where the request comes from (`Origin`), the origin of
PUBLIC_BASE_URL or http://localhost on the gateway's own port (never the Host
header's, so a DNS-rebinding page cannot drive it): another site cannot post to
it (a cross-site form or `text/plain` fetch would be a "simple" request that
skips CORS).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.channels import simulator
from bot.gateway.runtime import runtime
from bot.hosting import run_in_session
from bot.messages.events import internal_event_name
from bot.messages.models import (
    INBOX_PENDING,
    OUTBOX_DELIVERED,
    OUTBOX_SENT,
    Conversation,
    InboxMessage,
    OutboxMessage,
)

PAGE = Path(__file__).resolve().parent / "simulator.html"
NONCE_MARK = "__CSP_NONCE__"
PAGE_LIMIT = 200


def parse_cursor(value: str | None) -> tuple[int, int]:
    """The cursor "<last inbox id>.<last outbox id>" the page got last time."""
    if not value:
        return 0, 0
    inbox, _, outbox = value.partition(".")
    try:
        return max(0, int(inbox)), max(0, int(outbox or "0"))
    except ValueError as exc:
        raise simulator.SimulatorError("cursor tidak valid") from exc


def _iso(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def conversation_messages(
    session: Session, channel: str, user: str, after: tuple[int, int]
) -> dict[str, Any]:
    """The messages of a simulated conversation after the cursor, in time order."""
    conversation = session.execute(
        select(Conversation).where(
            Conversation.channel == channel,
            Conversation.address == simulator.address_of(user),
        )
    ).scalar_one_or_none()
    if conversation is None:
        cursor = f"{after[0]}.{after[1]}"
        return {"messages": [], "cursor": cursor, "waiting": False, "opted_out": False}
    inbox_rows = (
        session.execute(
            select(InboxMessage)
            .where(
                InboxMessage.conversation_id == conversation.id,
                InboxMessage.id > after[0],
            )
            .order_by(InboxMessage.id)
            .limit(PAGE_LIMIT)
        )
        .scalars()
        .all()
    )
    outbox_rows = (
        session.execute(
            select(OutboxMessage)
            .where(
                OutboxMessage.conversation_id == conversation.id,
                OutboxMessage.id > after[1],
                OutboxMessage.status.in_((OUTBOX_SENT, OUTBOX_DELIVERED)),
            )
            .order_by(OutboxMessage.id)
            .limit(PAGE_LIMIT)
        )
        .scalars()
        .all()
    )
    waiting = session.execute(
        select(func.count(InboxMessage.id)).where(
            InboxMessage.conversation_id == conversation.id,
            InboxMessage.status == INBOX_PENDING,
        )
    ).scalar_one()
    entries: list[tuple[Any, int, dict[str, Any]]] = []
    for row in inbox_rows:
        if internal_event_name(row.event) is not None:  # not the person's words
            continue
        shown = simulator.describe_user_message(channel, row.text, row.payload)
        entries.append(
            (
                row.received_at,
                0,
                {
                    "id": f"u{row.id}",
                    "from": "user",
                    "at": _iso(row.received_at),
                    **shown,
                },
            )
        )
    for out in outbox_rows:
        described = simulator.describe_bot_body(channel, dict(out.body))
        if described is not None:
            entries.append(
                (
                    out.sent_at,
                    1,
                    {
                        "id": f"b{out.id}",
                        "from": "bot",
                        "at": _iso(out.sent_at),
                        **described,
                    },
                )
            )
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    last_in = inbox_rows[-1].id if inbox_rows else after[0]
    last_out = outbox_rows[-1].id if outbox_rows else after[1]
    return {
        "messages": [entry[2] for entry in entries],
        "cursor": f"{last_in}.{last_out}",
        "waiting": bool(waiting),
        "opted_out": bool(conversation.opted_out),
    }


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
"""Names of this machine a browser may use for a loopback PUBLIC_BASE_URL."""


def _origin_parts(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, lower case, the default port filled in."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:  # a port that is not a number
        return scheme, "", None
    host = (parts.hostname or "").lower()
    return scheme, f"[{host}]" if ":" in host else host, port


def origin_allowed(
    origin: str, public_base_url: str, local_port: int | None = None
) -> bool:
    """The Origin is the configured public URL's origin, or plain http on a
    loopback name (localhost, 127.0.0.1, [::1]) and `local_port` (the port the
    gateway listens on). Loopback names stand for each other when the public URL
    is one. A DNS-rebinding page's origin is its own host name, never these."""
    given = _origin_parts(origin)
    wanted = _origin_parts(public_base_url)
    if not given[1] or given[2] is None:
        return False
    if given == wanted:
        return True
    if given[1] not in LOOPBACK_NAMES:
        return False
    if given[0] == "http" and given[2] == local_port:
        return True
    same_scheme_and_port = (given[0], given[2]) == (wanted[0], wanted[2])
    return wanted[1] in LOOPBACK_NAMES and same_scheme_and_port


def same_origin(request: Request) -> bool:
    """True unless the request names another site as its Origin (a missing Origin
    is allowed: browsers always send one on cross-site POSTs). Compared with
    PUBLIC_BASE_URL, never with the Host header, which a DNS-rebinding page
    controls."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    settings = runtime(request).settings
    return origin_allowed(origin, settings.public_base_url, settings.gateway_port)


def is_json(request: Request) -> bool:
    """The request says its body is JSON."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0]
    return media_type.strip().lower() == "application/json"


async def page(request: Request) -> Response:
    """The simulator page, with a per-response nonce for its inline script."""
    nonce = secrets.token_urlsafe(16)
    html = PAGE.read_text(encoding="utf-8").replace(NONCE_MARK, nonce)
    policy = (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


async def send(request: Request) -> Response:
    """Store what the page's user typed or pressed, as a channel would."""
    if not same_origin(request):
        return _error("hanya dari halaman simulator ini", 403)
    if not is_json(request):
        return _error("Content-Type harus application/json", 415)
    try:
        data = json.loads(await request.body())
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
        return _error("body harus JSON")
    if not isinstance(data, dict):
        return _error("body harus objek JSON")
    payload = data.get("payload")
    try:
        message = simulator.inbound(
            simulator.check_channel(data.get("channel")),
            simulator.check_user(data.get("user")),
            text=data.get("text") if payload is None else None,
            payload=payload,
        )
    except simulator.SimulatorError as exc:
        return _error(str(exc))
    gateway = runtime(request)
    await gateway.store(message)
    return JSONResponse({"ok": True, "provider_id": message.provider_id})


async def messages(request: Request) -> Response:
    """The conversation's messages after `after` (a cursor from the last answer)."""
    params = request.query_params
    try:
        channel = simulator.check_channel(params.get("channel"))
        user = simulator.check_user(params.get("user"))
        after = parse_cursor(params.get("after"))
    except simulator.SimulatorError as exc:
        return _error(str(exc))
    result = await run_in_session(
        request, lambda session: conversation_messages(session, channel, user, after)
    )
    return JSONResponse(result, headers={"Cache-Control": "no-store"})


routes = [
    Route("/simulator", page, methods=["GET"]),
    Route("/simulator/api/send", send, methods=["POST"]),
    Route("/simulator/api/messages", messages, methods=["GET"]),
]
