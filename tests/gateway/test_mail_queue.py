"""The gateway sends the code mails an action queued but never sent (its
process died between the database commit and the SMTP call)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.db import make_engine, make_sessionmaker, utcnow
from bot.notify.mailbox import outbox_files, read_message
from bot.notify.models import QueuedMail
from bot.notify.queue import queue_mail
from bot.schema import upgrade
from bot.settings import Settings
from tests.gateway.conftest import running, wait_until


def test_a_mail_left_queued_is_sent_by_the_gateway(settings: Settings) -> None:
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    now = utcnow() - timedelta(minutes=1)
    with sessions() as session, session.begin():
        queue_mail(
            session,
            "siti@example.com",
            "Kode",
            "Kode kamu: 123456",
            now=now,
            expires_at=now + timedelta(minutes=15),
        )

    with running(settings):
        files = wait_until(
            lambda: outbox_files(settings.email_outbox_dir), what="the mail file"
        )

    assert [read_message(path)["To"] for path in files] == ["siti@example.com"]
    with sessions() as session:
        assert session.execute(select(QueuedMail)).first() is None
    engine.dispose()
