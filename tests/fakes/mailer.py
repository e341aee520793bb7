"""A mailer that records what it would send, for tests of the e-mail flows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.notify.email import EmailDeliveryError

_CODE = re.compile(r"\b(\d{6})\b")


@dataclass(frozen=True)
class SentMail:
    """One recorded e-mail."""

    to: str
    subject: str
    body: str

    @property
    def code(self) -> str:
        """The six-digit code in the body."""
        found = _CODE.search(self.body)
        assert found is not None, "no code in the mail"
        return found.group(1)


@dataclass
class FakeMailer:
    """An EmailSender that records what it is asked to send (or fails)."""

    sent: list[SentMail] = field(default_factory=list)
    failing: bool = False

    async def send(self, to: str, subject: str, body: str) -> None:
        """Record the mail, or raise like an unreachable server."""
        if self.failing:
            raise EmailDeliveryError("the test mailer is down")
        self.sent.append(SentMail(to, subject, body))

    @property
    def last(self) -> SentMail:
        """The latest mail."""
        assert self.sent, "no mail was sent"
        return self.sent[-1]
