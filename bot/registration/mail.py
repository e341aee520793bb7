"""The e-mails the registration sends: one-time codes, in Indonesian."""

from __future__ import annotations

from bot.policy.catalogue import say
from bot.registry.email_codes import CODE_TTL

MINUTES = int(CODE_TTL.total_seconds() // 60)

PURPOSES = ("register", "link", "erase")


def code_mail(code: str, purpose: str) -> tuple[str, str]:
    """Subject and body of a code mail; `purpose` is "register", "link" or "erase"."""
    if purpose not in PURPOSES:
        raise KeyError(purpose)
    body = say(
        "mail.code_body",
        purpose=say(f"mail.purposes.{purpose}"),
        code=code,
        minutes=MINUTES,
    )
    return say(f"mail.subjects.{purpose}"), body + "\n"
