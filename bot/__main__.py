"""`python -m bot`: run the gateway (webhooks, workers, outbox, simulator).

Settings come from the environment (bot/settings.py). Two more variables, both
optional, tune this process:

- GATEWAY_WORKERS: conversations handed to Rasa at the same time (default 16).
- GATEWAY_SENDERS: replies sent at the same time, per channel (default 16).
- GATEWAY_MAX_PENDING: messages waiting in all processes beyond which Telegram
  updates are refused with 503 (default 100000).
- GATEWAY_MAX_PENDING_PER_CONVERSATION: messages of one person waiting at once;
  more are stored unread and the person is told (default 10).
- GATEWAY_NOTICE_WAIT: seconds of expected wait from which a person is told the
  wait once, and after which a waiting message is stale (default 30).

A stop (SIGINT/SIGTERM) lets work in flight finish: allow the process at least
`GatewayOptions.shutdown_grace` seconds (35 by default) before killing it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

import uvicorn

from bot.gateway.app import create_app
from bot.gateway.options import GatewayOptions
from bot.gc_freeze import freeze_startup_objects
from bot.settings import Settings, SettingsError, load_settings

SHUTDOWN_GRACE_SECONDS = 20
"""Seconds uvicorn waits for open HTTP requests at stop (the loops drain after)."""


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise SettingsError(f"{name} must be a whole number of at least 1")
    return value


def gateway_options(env: Mapping[str, str]) -> GatewayOptions:
    """The gateway's tuning from GATEWAY_* variables (see above), else defaults."""
    defaults = GatewayOptions()
    notice_wait = _count(env, "GATEWAY_NOTICE_WAIT", int(defaults.notice_wait))
    return GatewayOptions(
        worker_concurrency=_count(env, "GATEWAY_WORKERS", defaults.worker_concurrency),
        outbox_concurrency=_count(env, "GATEWAY_SENDERS", defaults.outbox_concurrency),
        max_pending=_count(env, "GATEWAY_MAX_PENDING", defaults.max_pending),
        max_pending_per_conversation=_count(
            env,
            "GATEWAY_MAX_PENDING_PER_CONVERSATION",
            defaults.max_pending_per_conversation,
        ),
        notice_wait=float(notice_wait),
        stale_after=float(notice_wait),
    )


def forwarding(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for X-Forwarded-For and X-Forwarded-Proto: they count
    only when the direct peer is one of TRUSTED_PROXIES (none by default: the
    peer's own address is the client's, whatever the headers say)."""
    trusted = list(settings.trusted_proxies)
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}


def configure_logging() -> None:
    """INFO logs without the libraries' chatty request logs."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # URLs carry the bot token
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # per request


def main() -> int:
    """Serve the gateway until SIGINT/SIGTERM, then stop its loops cleanly."""
    configure_logging()
    try:
        settings = load_settings()
        options = gateway_options(os.environ)
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings, options=options, on_started=freeze_startup_objects)
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    print(f"Gateway on {base}", flush=True)
    if settings.is_development:
        print(f"Simulator: {base}/simulator", flush=True)
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level="info",
        access_log=False,
        **forwarding(settings),
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
