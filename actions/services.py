"""What the actions share: the registry, handoff and privacy desks, the mailer
and its queue (its claims in the name of this process, whose heartbeat a
thread keeps), and the token vault.

Built once per action-server process from the environment (`bot.settings`), on
first use, so importing the actions needs no database. Tests install their own
with :func:`use_services`.
"""

from __future__ import annotations

import atexit
from dataclasses import dataclass

from bot import leases
from bot.console.presence import agents_online
from bot.db import make_engine, make_sessionmaker
from bot.handoff.desk import HandoffDesk
from bot.handoff.hours import AgentHours
from bot.notify.email import EmailSender, make_email_sender
from bot.notify.queue import MailQueue
from bot.policy.programme import load_policy
from bot.privacy.desk import PrivacyDesk
from bot.privacy.vault import Vault
from bot.registration.desk import CODE_SECRET_PURPOSE, RegistrationDesk
from bot.settings import load_settings
from bot.thread_heartbeat import ThreadHeartbeat


@dataclass(frozen=True)
class Services:
    """The registry desk, the e-mail sender, the handoff desk, the token vault,
    the privacy desk (None in tests that do not need it) and the mail queue
    the desks' code mails wait in (sent with `mailer`)."""

    desk: RegistrationDesk
    mailer: EmailSender
    handoff: HandoffDesk
    vault: Vault
    privacy: PrivacyDesk | None = None
    mail: MailQueue | None = None


_current: list[Services] = []


def services() -> Services:
    """The process's services, built from the settings on first use."""
    if not _current:
        settings = load_settings()
        sessions = make_sessionmaker(make_engine(settings.database_url))
        desk = RegistrationDesk(
            sessions, settings.secret_for(CODE_SECRET_PURPOSE), load_policy
        )
        handoff = HandoffDesk(
            sessions, AgentHours.from_settings(settings), agents_online=agents_online
        )
        secret = settings.secret_for(CODE_SECRET_PURPOSE)
        privacy = PrivacyDesk(
            sessions,
            secret,
            settings.retention_days,
            None if settings.smtp_url else settings.email_outbox_dir,
        )
        mailer = make_email_sender(settings)
        # The code mails are claimed in this process's name: its heartbeat
        # tells the gateway when they are orphaned (the process was killed).
        heartbeat = ThreadHeartbeat(sessions, leases.owner_id("actions"))
        heartbeat.start()
        atexit.register(heartbeat.stop)
        _current.append(
            Services(
                desk,
                mailer,
                handoff,
                Vault(sessions),
                privacy,
                MailQueue(sessions, mailer, owner=heartbeat.owner),
            )
        )
    return _current[0]


def mail_queue() -> MailQueue:
    """The process's mail queue."""
    queue = services().mail
    if queue is None:
        raise RuntimeError("the services have no mail queue")
    return queue


def use_services(replacement: Services | None) -> None:
    """Install services (tests); None forgets them."""
    _current.clear()
    if replacement is not None:
        _current.append(replacement)
