"""The gateway's HTTP floor: what one message costs in the web server, the
providers' parsers, the Rasa client and the providers' clients alone.

`python -m bench.gateway --floor` starts this (`python -m bench.gateway_floor`,
the same environment) in place of the gateway, so the same load, fakes, checks
and CPU figures apply. For each webhook it does what the gateway does over HTTP
and nothing else: the same ASGI app stack (uvicorn with uvloop and httptools,
Starlette, the gateway's middleware), the same parsers (the Telegram secret and
python-telegram-bot's Update, the Twilio signature), the Rasa call
(`bot.gateway.rasa_client.RasaClient`), the channel's rendering and the send
through the gateway's senders (python-telegram-bot's Bot on aiohttp, twilio's
async client), and it answers the delivery-status callbacks. No database, no
queue, no leases, no retries: a message is answered in a task of the request
that brought it. The difference between the gateway's CPU per message and this
one's is what the gateway's guarantees cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.channels.base import Channel, InboundMessage, Sender
from bot.channels.sms import parse_inbound
from bot.channels.sms.webhooks import parse_status
from bot.channels.telegram import parse_webhook
from bot.gateway.app import (
    EMPTY_TWIML,
    SMS_INBOUND_PATH,
    SMS_STATUS_PATH,
    TWILIO_SIGNATURE,
    form_fields,
)
from bot.gateway.limits import BodyLimit
from bot.gateway.options import GatewayOptions
from bot.gateway.rasa_client import RasaClient
from bot.gateway.runtime import default_channels, default_senders
from bot.gateway.transport import StrictTransportSecurity
from bot.messages.pseudonym import pseudonym
from bot.settings import Settings, load_settings

log = logging.getLogger(__name__)


class Floor:
    """The parts the routes share: settings, channels, senders, the Rasa client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.channels: dict[str, Channel] = default_channels()
        self.senders: dict[str, Sender] = default_senders(settings, GatewayOptions())
        self.rasa = RasaClient(settings.rasa_url)
        self.tasks: set[asyncio.Task[None]] = set()

    def answer(self, message: InboundMessage) -> None:
        """Answer `message` in a task of its own (the webhook returns at once)."""
        task = asyncio.create_task(self._answer(message))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, message: InboundMessage) -> None:
        key = self.settings.pseudonym_key
        sender = pseudonym(key, message.channel, message.address)
        replies = await self.rasa.send(sender, message.text, {})
        rendered = self.channels[message.channel].render(replies, {})
        for body in rendered.bodies:
            result = await self.senders[message.channel].send(message.address, body)
            if not result.ok:
                log.warning("floor: %s send failed: %s", message.channel, result.error)

    async def close(self) -> None:
        """Let answers in flight end, then close the clients."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=10)
        await self.rasa.aclose()
        for sender in self.senders.values():
            close = getattr(sender, "close", None)
            if close is not None:
                await close()


def floor_of(request: Request) -> Floor:
    """The running floor of the app serving this request."""
    found: Floor = request.app.state.floor
    return found


async def telegram_webhook(request: Request) -> Response:
    """Parse the update as the gateway does, answer it in a task."""
    floor = floor_of(request)
    message = parse_webhook(floor.settings, request.headers, await request.body())
    if message is not None:
        floor.answer(message)
    return JSONResponse({"ok": True})


async def sms_inbound(request: Request) -> Response:
    """Check and parse the SMS as the gateway does, answer it in a task."""
    floor = floor_of(request)
    params = await form_fields(request)
    url = floor.settings.public_base_url + SMS_INBOUND_PATH
    signature = request.headers.get(TWILIO_SIGNATURE)
    floor.answer(parse_inbound(floor.settings, url, params, signature))
    return Response(EMPTY_TWIML, media_type="text/xml")


async def sms_status(request: Request) -> Response:
    """Check and parse a delivery status as the gateway does; store nothing."""
    floor = floor_of(request)
    params = await form_fields(request)
    url = floor.settings.public_base_url + SMS_STATUS_PATH
    parse_status(floor.settings, url, params, request.headers.get(TWILIO_SIGNATURE))
    return Response(EMPTY_TWIML, media_type="text/xml")


async def healthz(request: Request) -> Response:
    """Up (the bench waits for this before it starts)."""
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings) -> Starlette:
    """The floor's app: the gateway's webhook paths and middleware."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.floor = Floor(settings)
        yield
        await app.state.floor.close()

    https = settings.public_base_url.startswith("https://")
    return Starlette(
        routes=[
            Route("/telegram/webhook", telegram_webhook, methods=["POST"]),
            Route(SMS_INBOUND_PATH, sms_inbound, methods=["POST"]),
            Route(SMS_STATUS_PATH, sms_status, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        middleware=[
            Middleware(StrictTransportSecurity, enabled=https),
            Middleware(BodyLimit),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    """Serve the floor on GATEWAY_HOST:GATEWAY_PORT, as `python -m bot` serves."""
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
