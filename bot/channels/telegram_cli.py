"""Register the Telegram webhook: `python -m bot.channels.telegram_cli set-webhook`.

Commands: `set-webhook` (PUBLIC_BASE_URL + /telegram/webhook, with the secret
token and the update types the gateway handles), `delete-webhook`, `info`.
Uses the real Bot client against TELEGRAM_API_URL; never prints the token or
the secret.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from bot.channels.telegram import ALLOWED_UPDATES, WEBHOOK_PATH, make_bot
from bot.settings import Settings, SettingsError, load_settings

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


class CliError(Exception):
    """A configuration problem, told to the person running the command."""


def webhook_url(env: Mapping[str, str]) -> str:
    """The webhook URL from PUBLIC_BASE_URL: https, or http on localhost."""
    base = (env.get("PUBLIC_BASE_URL") or "").strip().rstrip("/")
    if not base:
        raise CliError(
            "PUBLIC_BASE_URL is not set: give the public https address of the "
            "gateway, e.g. PUBLIC_BASE_URL=https://bot.example.org"
        )
    parts = urlsplit(base)
    local = (parts.hostname or "") in LOCAL_HOSTS
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise CliError(
            f"PUBLIC_BASE_URL must start with https:// (Telegram only calls https "
            f"webhooks; http is accepted for localhost only), got {base!r}"
        )
    return base + WEBHOOK_PATH


def check_config(settings: Settings, command: str) -> None:
    """Raise CliError when the settings cannot serve this command."""
    if not settings.telegram_token:
        raise CliError("TELEGRAM_TOKEN is not set: use the token from @BotFather")
    if command != "set-webhook":
        return
    secret = settings.telegram_secret_token
    if not secret:
        raise CliError(
            "TELEGRAM_SECRET_TOKEN is not set: choose a random secret, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    if not SECRET_TOKEN.fullmatch(secret):
        raise CliError(
            "TELEGRAM_SECRET_TOKEN may only hold A-Z, a-z, 0-9, _ and - "
            "(1 to 256 characters)"
        )


async def _set(bot: Bot, settings: Settings, url: str) -> str:
    await bot.set_webhook(
        url=url,
        secret_token=settings.telegram_secret_token,
        allowed_updates=list(ALLOWED_UPDATES),
        drop_pending_updates=False,
    )
    return f"Webhook of @{bot.username} set to {url} (updates: message, callback_query)"


async def _delete(bot: Bot, drop_pending: bool) -> str:
    await bot.delete_webhook(drop_pending_updates=drop_pending)
    return f"Webhook of @{bot.username} deleted"


async def _info(bot: Bot) -> str:
    info = await bot.get_webhook_info()
    lines = [
        f"bot: @{bot.username}",
        f"url: {info.url or '(none)'}",
        f"pending updates: {info.pending_update_count}",
        f"allowed updates: {', '.join(info.allowed_updates or ()) or '(all)'}",
    ]
    if info.last_error_message:
        lines.append(f"last error: {info.last_error_message}")
    return "\n".join(lines)


async def run(
    command: str, settings: Settings, env: Mapping[str, str], drop: bool
) -> str:
    """Carry out one command and return what to print."""
    check_config(settings, command)
    url = webhook_url(env) if command == "set-webhook" else ""
    async with make_bot(settings, pool_size=1) as bot:  # initialize checks the token
        if command == "set-webhook":
            return await _set(bot, settings, url)
        if command == "delete-webhook":
            return await _delete(bot, drop)
        return await _info(bot)


def main(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> int:
    """Entry point; returns the exit status (2: configuration, 1: Telegram)."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.channels.telegram_cli", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=["set-webhook", "delete-webhook", "info"])
    parser.add_argument(
        "--drop-pending-updates",
        action="store_true",
        help="with delete-webhook: also drop the updates Telegram still holds",
    )
    args = parser.parse_args(argv)
    environ = dict(os.environ if env is None else env)
    try:
        settings = load_settings(environ)
        message = asyncio.run(
            run(args.command, settings, environ, args.drop_pending_updates)
        )
    except (CliError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except InvalidToken:
        print("error: Telegram rejected TELEGRAM_TOKEN", file=sys.stderr)
        return 1
    except TelegramError as exc:
        print(f"error: Telegram answered: {exc.message}", file=sys.stderr)
        return 1
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
