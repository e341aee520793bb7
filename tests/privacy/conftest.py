"""Privacy test fixtures: the registration desk's database (SQLite and
PostgreSQL), a Rasa tracker store with an `events` table, a mail folder, and
one person registered over SMS with a transcript, a ticket, a note and mail."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from bot.channels.base import InboundMessage
from bot.db import make_engine
from bot.handoff.tickets import add_note, open_ticket
from bot.messages.inbox import store_inbound
from bot.messages.models import INBOX_DONE, OUTBOX_SENT, InboxMessage, OutboxMessage
from bot.notify.email import build_message
from bot.registration.desk import RegistrationDesk
from tests.registration.conftest import (
    BORN,
    EMAIL,
    KK,
    NAME,
    PHONE,
    PSEUDONYM_KEY,
    START,
    FakeClock,
    PolicyChoice,
    caller_of,
    clock,
    converse,
    database_url,
    desk,
    engine,
    nik,
    policy,
    register,
    sessions,
)

__all__ = [  # the registration desk's fixtures, used by the privacy tests
    "clock",
    "converse",
    "database_url",
    "desk",
    "engine",
    "policy",
    "sessions",
    "FakeClock",
    "PolicyChoice",
]

PERSONAL = (nik(1), KK, EMAIL, PHONE, NAME, BORN.isoformat(), "15-08-1990")
"""Every personal value of the person: none may survive an erasure."""


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[Engine]:
    """A tracker store shaped like Rasa's SQLTrackerStore (`events`)."""
    store = make_engine(f"sqlite:///{tmp_path}/tracker.db")
    metadata = sa.MetaData()
    sa.Table(
        "events",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sender_id", sa.String(255), nullable=False, index=True),
        sa.Column("type_name", sa.String(255), nullable=False),
        sa.Column("timestamp", sa.Float),
        sa.Column("intent_name", sa.String(255)),
        sa.Column("action_name", sa.String(255)),
        sa.Column("data", sa.Text),
    )
    metadata.create_all(store)
    yield store
    store.dispose()


@pytest.fixture
def mail_dir(tmp_path: Path) -> Path:
    """The local e-mail outbox folder."""
    folder = tmp_path / "email-outbox"
    folder.mkdir()
    return folder


@dataclass(frozen=True)
class Person:
    """The registered person's ids."""

    applicant_id: int
    identity_id: int
    conversation_id: int
    pseudonym: str


def write_mail(folder: Path, to: str, name: str, now: datetime = START) -> Path:
    """A message in the local outbox folder, as FolderEmailSender writes it."""
    message = build_message("noreply@prakerja.localhost", to, "Kode", "123456", now=now)
    path = folder / f"{name}.eml"
    path.write_bytes(message.as_bytes())
    return path


def add_event(tracker: Engine, sender: str, data: str, stamp: float) -> None:
    """One tracker event of `sender` holding `data`."""
    with tracker.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO events (sender_id, type_name, timestamp, data)"
                " VALUES (:sender, 'user', :stamp, :data)"
            ),
            {"sender": sender, "stamp": stamp, "data": data},
        )


@pytest.fixture
def person(
    desk: RegistrationDesk,
    sessions: sessionmaker,
    tracker: Engine,
    mail_dir: Path,
) -> Person:
    """Someone who registered over SMS, typed their data in the chat, got
    replies, asked for an agent who wrote a note; with mail and tracker events."""
    with sessions() as session, session.begin():
        for number, typed in enumerate((NAME, EMAIL, nik(1), KK, "15-08-1990")):
            store_inbound(
                session,
                InboundMessage("sms", f"SM{number}", PHONE, text=typed),
                PSEUDONYM_KEY,
            )
        session.execute(
            sa.update(InboxMessage).values(
                status=INBOX_DONE, received_at=START, processed_at=START
            )
        )
        row = session.execute(select(InboxMessage.conversation_id)).first()
        assert row is not None
        conversation_id = int(row.conversation_id)
        session.execute(
            insert(OutboxMessage).values(
                conversation_id=conversation_id,
                seq=0,
                body={"kind": "sms", "text": f"Halo {NAME}, NIK {nik(1)} dicek."},
                status=OUTBOX_SENT,
                created_at=START,
            )
        )
    from bot.messages.pseudonym import pseudonym

    alias = pseudonym(PSEUDONYM_KEY, "sms", PHONE)
    caller = caller_of(desk, alias)
    submission = register(desk, caller)
    assert submission.applicant_id is not None
    with sessions() as session, session.begin():
        ticket, _ = open_ticket(session, conversation_id, "request_human", now=START)
        add_note(session, ticket.id, 1, f"Ibu {NAME}, email {EMAIL}", now=START)
    write_mail(mail_dir, EMAIL, "20261120T030000.000000Z-a")
    write_mail(mail_dir, "orang.lain@example.com", "20261120T030000.000000Z-b")
    add_event(tracker, alias, f'{{"text": "{nik(1)}"}}', START.timestamp())
    add_event(tracker, "someone-else", '{"text": "halo"}', START.timestamp())
    return Person(submission.applicant_id, caller.identity_id, conversation_id, alias)


def leftovers(database: Engine, values: tuple[str, ...] = PERSONAL) -> list[str]:
    """`table: value` for every personal value still found in any row of any
    table of the database."""
    found = []
    inspector = inspect(database)
    with database.connect() as connection:
        for table in inspector.get_table_names():
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()  # noqa: S608
            for row in rows:
                line = " ".join(str(value) for value in row)
                found.extend(f"{table}: {value}" for value in values if value in line)
    return found


CountRows = Callable[[str], int]
