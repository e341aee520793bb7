"""The gateway's ASGI app: provider webhooks, health check, agents' console, simulator.

Every webhook is authenticated first (Telegram secret token, Twilio signature),
then stored, then acknowledged at once; Rasa is never called inside a request. The
agents' console (`/console`, `bot.console.app`) is always served, in production
too; the simulator only in development (PRAKERJA_ENV development or test).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.channels.base import Channel, Sender, Unauthorized
from bot.channels.sms import parse_inbound, parse_status
from bot.channels.telegram import parse_webhook
from bot.console import app as console
from bot.console.presence import agents_online
from bot.db import utcnow
from bot.gateway import simulator
from bot.gateway.failures import failed_count
from bot.gateway.options import GatewayOptions
from bot.gateway.pool import describe_error
from bot.gateway.runtime import Gateway, run_in_session, runtime
from bot.gateway.statuses import apply_early_statuses, keep_early_status, record_status
from bot.settings import Settings

log = logging.getLogger(__name__)

SMS_INBOUND_PATH = "/sms/inbound"
SMS_STATUS_PATH = "/sms/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
TWILIO_SIGNATURE = "X-Twilio-Signature"


def _forbidden() -> Response:
    return JSONResponse({"error": "forbidden"}, status_code=403)


def _bad_request() -> Response:
    return JSONResponse({"error": "bad request"}, status_code=400)


async def database_error(request: Request, exc: Exception) -> Response:
    """A database error in a request: 503 (providers deliver again later), logged
    by type and place only (its message can quote stored values)."""
    path = request.url.path
    log.error("%s %s: database error: %s", request.method, path, describe_error(exc))
    return JSONResponse({"error": "unavailable"}, status_code=503)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


async def telegram_webhook(request: Request) -> Response:
    """Store a Telegram update (once per update_id) and acknowledge it."""
    gateway = runtime(request)
    body = await request.body()
    try:
        message = parse_webhook(gateway.settings, request.headers, body)
    except Unauthorized:
        log.warning("telegram webhook refused: bad secret token")
        return _forbidden()
    except ValueError:
        return _bad_request()
    if message is not None:
        await gateway.store(message)
    return JSONResponse({"ok": True})


async def sms_inbound(request: Request) -> Response:
    """Store an inbound SMS (once per MessageSid); answer with empty TwiML."""
    gateway = runtime(request)
    params = await _form(request)
    url = gateway.settings.public_base_url + SMS_INBOUND_PATH
    try:
        message = parse_inbound(
            gateway.settings, url, params, request.headers.get(TWILIO_SIGNATURE)
        )
    except Unauthorized:
        log.warning("sms inbound refused: bad signature")
        return _forbidden()
    except ValueError:
        return _bad_request()
    await gateway.store(message)
    return Response(EMPTY_TWIML, media_type="text/xml")


async def sms_status(request: Request) -> Response:
    """Record a Twilio delivery status for a message we sent."""
    gateway = runtime(request)
    params = await _form(request)
    url = gateway.settings.public_base_url + SMS_STATUS_PATH
    try:
        update = parse_status(
            gateway.settings, url, params, request.headers.get(TWILIO_SIGNATURE)
        )
    except Unauthorized:
        log.warning("sms status refused: bad signature")
        return _forbidden()
    except ValueError:
        return _bad_request()

    def record(session: Session) -> bool:
        return record_status(
            session, update.message_sid, update.status, update.error_code
        )

    def keep(session: Session) -> None:
        keep_early_status(session, update.message_sid, update.status, update.error_code)

    def apply(session: Session) -> int:
        return apply_early_statuses(session, update.message_sid)

    if await run_in_session(request, record):
        return Response(EMPTY_TWIML, media_type="text/xml")
    # Before the sender stored this id: keep it in the database (committed), then
    # look again; the sender looks for kept statuses after its own commit, so one
    # of the two applies it, whichever process stores the id.
    await run_in_session(request, keep)
    if not await run_in_session(request, apply):
        log.info("sms status for message %s not stored yet: kept", update.message_sid)
    return Response(EMPTY_TWIML, media_type="text/xml")


async def healthz(request: Request) -> Response:
    """The gateway is up, its database answers and its loops run; also the
    messages given up in the last 24 hours (all processes: `failed_messages`),
    this process's turns in which an action failed (`incomplete_turns`) and
    its sends whose outcome was unknown and how they ended (`unknown_sends`).
    Failures are reported, not unhealthy: restarting would not help them."""
    gateway = runtime(request)

    def failed(session: Session) -> int:
        return failed_count(session, utcnow())

    loops = "stopped" if any(t.done() for t in gateway.tasks) else "running"
    failed_messages: int | None = None
    try:
        failed_messages = await run_in_session(request, failed)
    except SQLAlchemyError as exc:
        log.error("health check: database unreachable: %s", type(exc).__name__)
        database = "unreachable"
    else:
        database = "ok"
    healthy = database == "ok" and loops == "running"
    return JSONResponse(
        {
            "status": "ok" if healthy else "error",
            "database": database,
            "loops": loops,
            "wakeups": gateway.wakeups.state,
            "unknown_sends": gateway.outbox.unknown_counts(),
            "failed_messages": failed_messages,
            "incomplete_turns": gateway.worker.incomplete_turns,
        },
        status_code=200 if healthy else 503,
    )


def create_app(
    settings: Settings,
    *,
    options: GatewayOptions | None = None,
    channels: Mapping[str, Channel] | None = None,
    senders: Mapping[str, Sender] | None = None,
) -> Starlette:
    """The gateway app. Nothing starts until its lifespan runs.

    `channels` and `senders` replace the real ones (tests); by default the
    Telegram and SMS channels are used, with a sender for each configured provider.
    """
    options = options or GatewayOptions()
    with_simulator = settings.is_development and options.simulator

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gateway = await Gateway.start(
            settings, options, channels, senders, agents_online=agents_online
        )
        app.state.gateway = gateway
        try:
            yield
        finally:
            await gateway.stop()

    routes: list[BaseRoute] = [
        Route("/telegram/webhook", telegram_webhook, methods=["POST"]),
        Route(SMS_INBOUND_PATH, sms_inbound, methods=["POST"]),
        Route(SMS_STATUS_PATH, sms_status, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        *console.routes(),
    ]
    if with_simulator:
        routes.extend(simulator.routes)
    return Starlette(
        routes=routes,
        middleware=console.middleware(),
        lifespan=lifespan,
        exception_handlers={SQLAlchemyError: database_error},
    )
