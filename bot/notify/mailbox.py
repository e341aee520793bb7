"""Read the local e-mail outbox: ``python -m bot.notify.mailbox [--last N]``.

For developers: prints the newest messages that :class:`FolderEmailSender`
wrote (time, To, Subject and text body), so a one-time code sent to you can be
read without a mail server. ``make mail`` runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import cast

from bot.notify.email import EML_SUFFIX, parse_smtp_url
from bot.settings import load_settings

DEFAULT_LAST = 5
_NAME_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"


def outbox_files(directory: Path) -> list[Path]:
    """The messages in the folder, oldest first (names sort by time)."""
    if not directory.is_dir():
        return []
    return sorted(
        path
        for path in directory.iterdir()
        if path.suffix == EML_SUFFIX and not path.name.startswith(".")
    )


def read_message(path: Path) -> EmailMessage:
    """Parse one ``.eml`` file."""
    with path.open("rb") as file:
        # policy.default makes EmailMessage objects.
        return cast(EmailMessage, BytesParser(policy=policy.default).parse(file))


def sent_at(path: Path, message: EmailMessage) -> datetime | None:
    """When the message was written: its Date header, else its file name."""
    date = message["Date"]
    stamp = getattr(date, "datetime", None)
    if isinstance(stamp, datetime) and stamp.tzinfo is not None:
        return stamp.astimezone(timezone.utc)
    try:
        named = datetime.strptime(path.name.split("-", 1)[0], _NAME_TIME_FORMAT)
    except ValueError:
        return None
    return named.replace(tzinfo=timezone.utc)


def text_body(message: EmailMessage) -> str:
    """The plain-text body, or a note when there is none."""
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return "(no plain-text body)"
    # The files have CRLF line endings (RFC 5322); print plain lines.
    return "\n".join(str(part.get_content()).splitlines())


def format_message(path: Path, message: EmailMessage) -> str:
    """A few lines showing one message to a developer."""
    when = sent_at(path, message)
    shown = f"{when:%Y-%m-%d %H:%M:%S} UTC" if when else "unknown time"
    return "\n".join(
        [
            f"--- {shown}  ({path.name})",
            f"To:      {message['To']}",
            f"Subject: {message['Subject']}",
            "",
            text_body(message),
        ]
    )


def _positive(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Print the newest messages of the outbox; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.notify.mailbox",
        description="Show the newest e-mails in the local outbox folder.",
    )
    parser.add_argument(
        "--last",
        type=_positive,
        default=DEFAULT_LAST,
        metavar="N",
        help=f"how many of the newest messages to show (default {DEFAULT_LAST})",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("PRAKERJA_ENV", "development")
    settings = load_settings()

    if settings.smtp_url:
        try:
            where = f"the SMTP server at {parse_smtp_url(settings.smtp_url).address}"
        except ValueError as exc:
            print(f"SMTP_URL is set but not usable: {exc}")
            return 1
        print(f"SMTP_URL is set: e-mail goes to {where}, not to the outbox folder.")
        return 0

    directory = settings.email_outbox_dir
    files = outbox_files(directory)
    if not files:
        print(f"The e-mail outbox {directory} is empty: nothing has been sent yet.")
        return 0
    shown = files[-args.last :]
    print(
        f"E-mail outbox {directory}: the newest {len(shown)} of {len(files)} "
        "message(s), newest last."
    )
    for path in shown:
        print()
        print(format_message(path, read_message(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
