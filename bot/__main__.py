"""`python -m bot`: run the gateway (webhooks, workers, outbox, simulator)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from bot.gateway.app import create_app
from bot.settings import SettingsError, load_settings

SHUTDOWN_GRACE_SECONDS = 20


def main() -> int:
    """Serve the gateway until SIGINT/SIGTERM, then stop its loops cleanly."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # URLs carry the bot token
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
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
        proxy_headers=True,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
