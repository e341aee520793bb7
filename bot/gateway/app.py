"""The gateway's ASGI app: provider webhooks, health check, agents' console, simulator.

Request bodies are capped before any work (`bot.gateway.limits`). Every webhook
is authenticated first (Telegram secret token, Twilio signature), then stored,
then acknowledged at once; Rasa is never called inside a request.
When as many messages wait as the gateway takes (`max_pending`), Telegram
updates are refused with 503 and Retry-After: Telegram keeps undelivered updates
(up to 24 hours) and delivers them again, so the backlog waits there instead.
An inbound SMS is always stored: Twilio never delivers a refused one again
(it only calls a fallback URL), so refusing would lose it. The
agents' console (`/console`, `bot.console.app`) is always served, in production
too; the simulator only in development (PRAKERJA_ENV development or test).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

from python_multipart.exceptions import FormParserError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.channels.base import Channel, InboundMessage, Sender, Unauthorized
from bot.channels.sms import parse_inbound, parse_status
from bot.channels.storable import storable_key, storable_message
from bot.channels.telegram import check_secret, parse_webhook
from bot.console import app as console
from bot.console.presence import agents_online
from bot.db import utcnow
from bot.gateway import simulator
from bot.gateway.limits import BodyLimit
from bot.gateway.options import GatewayOptions
from bot.gateway.runtime import Gateway, runtime
from bot.gateway.statuses import apply_early_statuses, keep_early_status, record_status
from bot.gateway.transport import StrictTransportSecurity
from bot.hosting import run_in_session
from bot.loops import describe_error
from bot.messages.failures import failed_count
from bot.settings import Settings

RETRY_AFTER_SECONDS = 30
"""What a refused Telegram update's Retry-After asks for (Telegram's own retry
schedule decides; the header documents the intent)."""

log = logging.getLogger(__name__)

SMS_INBOUND_PATH = "/sms/inbound"
SMS_STATUS_PATH = "/sms/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
TWILIO_SIGNATURE = "X-Twilio-Signature"
STATUS_FIELD_LENGTH = 32
"""Longest delivery status or error code the outbox stores."""


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


URLENCODED = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 1000
"""Fields of a form at most (Starlette's own limit for other forms)."""


async def broken_form(request: Request, exc: Exception) -> Response:
    """A form python-multipart cannot parse: 400 (Starlette lets its parse errors
    through as they are, which would be a 500)."""
    return _bad_request()


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form's fields (the last value of a repeated name). Twilio
    posts URL-encoded forms: those are parsed by the standard library, several
    times cheaper than python-multipart, which reads any other form."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type.lower() == URLENCODED:
        try:
            pairs = parse_qsl(
                (await request.body()).decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=MAX_FORM_FIELDS,
            )
        except (UnicodeDecodeError, ValueError):
            raise FormParserError("unreadable form") from None
        return dict(pairs)
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _storable(message: InboundMessage) -> bool:
    """Whether an authenticated message can be stored as it is; if not (NUL, a
    lone surrogate, an over-long id: nothing a real provider sends) it is logged
    by channel only and acknowledged, so the provider does not deliver it again."""
    if storable_message(message):
        return True
    log.warning("%s message ignored: text the store cannot hold", message.channel)
    return False


async def telegram_webhook(request: Request) -> Response:
    """Store a Telegram update (once per update_id) and acknowledge it."""
    gateway = runtime(request)
    try:
        check_secret(gateway.settings, request.headers)  # before reading the body
        message = parse_webhook(gateway.settings, request.headers, await request.body())
    except Unauthorized:
        log.warning("telegram webhook refused: bad secret token")
        return _forbidden()
    except ValueError:
        return _bad_request()
    if message is not None and gateway.backlog.over_capacity():
        gateway.backlog.refused()
        return JSONResponse(
            {"error": "busy"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if message is not None and _storable(message):
        await gateway.store(message)
    return JSONResponse({"ok": True})


async def sms_inbound(request: Request) -> Response:
    """Store an inbound SMS (once per MessageSid); answer with empty TwiML."""
    gateway = runtime(request)
    params = await form_fields(request)
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
    if _storable(message):
        await gateway.store(message)
    return Response(EMPTY_TWIML, media_type="text/xml")


async def sms_status(request: Request) -> Response:
    """Record a Twilio delivery status for a message we sent."""
    gateway = runtime(request)
    params = await form_fields(request)
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
    if not (
        storable_key(update.message_sid)
        and storable_key(update.status, STATUS_FIELD_LENGTH)
        and storable_key(update.error_code, STATUS_FIELD_LENGTH)
    ):
        log.warning("sms status ignored: a field the store cannot hold")
        return Response(EMPTY_TWIML, media_type="text/xml")

    def record(session: Session) -> bool:
        return record_status(
            session, update.message_sid, update.status, update.error_code
        )

    def keep(session: Session) -> None:
        keep_early_status(session, update.message_sid, update.status, update.error_code)

    def apply(session: Session) -> int:
        return apply_early_statuses(session, update.message_sid)

    if await gateway.writes.run(record):
        return Response(EMPTY_TWIML, media_type="text/xml")
    # Before the sender stored this id: keep it in the database (committed), then
    # look again; the sender looks for kept statuses after its own commit, so one
    # of the two applies it, whichever process stores the id.
    await gateway.writes.run(keep, then=lambda session, _: apply(session))
    log.debug("sms status for message %s came before its id: kept", update.message_sid)
    return Response(EMPTY_TWIML, media_type="text/xml")


async def healthz(request: Request) -> Response:
    """The gateway is up, its database answers and its loops run; also the
    messages given up in the last 24 hours (all processes: `failed_messages`),
    this process's turns in which an action failed (`incomplete_turns`), its
    sends whose outcome was unknown and how they ended (`unknown_sends`), and the
    backlog (`backlog`: messages waiting in all processes, conversations waiting,
    the oldest one's age, the measured rate and the expected wait, this
    process's notices and refused updates). Failures and backlogs are
    reported, not unhealthy: restarting would not help them."""
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
            "backlog": gateway.backlog.as_json(),
        },
        status_code=200 if healthy else 503,
    )


def create_app(
    settings: Settings,
    *,
    options: GatewayOptions | None = None,
    channels: Mapping[str, Channel] | None = None,
    senders: Mapping[str, Sender] | None = None,
    on_started: Callable[[], object] | None = None,
) -> Starlette:
    """The gateway app. Nothing starts until its lifespan runs.

    `channels` and `senders` replace the real ones (tests); by default the
    Telegram and SMS channels are used, with a sender for each configured provider.
    `on_started` is called once the gateway has started (`python -m bot`
    freezes the started process's objects: `bot.gc_freeze`).
    """
    options = options or GatewayOptions()
    with_simulator = settings.is_development and options.simulator

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gateway = await Gateway.start(
            settings, options, channels, senders, agents_online=agents_online
        )
        app.state.gateway = gateway
        if on_started is not None:
            on_started()
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
    https = settings.public_base_url.startswith("https://")
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(StrictTransportSecurity, enabled=https),
            *console.middleware(),
            Middleware(BodyLimit),
        ],
        lifespan=lifespan,
        exception_handlers={
            SQLAlchemyError: database_error,
            FormParserError: broken_form,
        },
    )
