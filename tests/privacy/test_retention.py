"""Retention removes what is older than the period, and nothing newer, on
SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from bot.effects.ledger import claim, record
from bot.effects.models import Effect
from bot.messages.models import Conversation, InboxMessage
from bot.notify.models import QueuedMail
from bot.notify.queue import queue_mail
from bot.privacy import retention
from bot.privacy.models import ErasureRecord, PersonalToken
from bot.privacy.retention import run_retention
from bot.privacy.vault import TOKEN_TTL, Vault
from bot.registration.desk import RegistrationDesk
from bot.registry.models import Applicant, ChannelIdentity, EmailCode
from bot.settings import SettingsError, load_settings
from tests.privacy.conftest import (
    Person,
    add_event,
    leftovers,
    write_mail,
)
from tests.registration.conftest import (
    OTHER_PHONE,
    SECRET,
    START,
    caller_of,
    register,
)

DAYS = 30


def _retain(
    sessions: sessionmaker, tracker: Engine, mail_dir: Path, days_later: float
) -> dict[str, int]:
    return run_retention(
        sessions,
        SECRET,
        days=DAYS,
        tracker=tracker,
        outbox_dir=mail_dir,
        now=START + timedelta(days=days_later),
    )


def _age_files(folder: Path) -> None:
    stamp = START.timestamp()
    for path in folder.iterdir():
        os.utime(path, (stamp, stamp))


def test_nothing_within_the_period_is_removed(
    sessions: sessionmaker,
    engine: Engine,
    tracker: Engine,
    mail_dir: Path,
    person: Person,
) -> None:
    before = leftovers(engine)
    _age_files(mail_dir)
    removed = _retain(sessions, tracker, mail_dir, DAYS - 1)
    # Only the expired code mail the desk queued (no gateway sent it) goes.
    assert removed == {"mail_queue": 1}
    assert leftovers(engine) == [
        found for found in before if not found.startswith("mail_queue:")
    ]
    assert len(list(mail_dir.iterdir())) == 2
    with sessions() as session:
        assert session.execute(select(ErasureRecord)).first() is None


def test_everything_idle_for_the_period_is_removed(
    sessions: sessionmaker,
    engine: Engine,
    tracker: Engine,
    mail_dir: Path,
    person: Person,
) -> None:
    _age_files(mail_dir)
    with sessions() as session, session.begin():  # the last activity: START
        session.execute(Conversation.__table__.update().values(updated_at=START))
        session.execute(Applicant.__table__.update().values(updated_at=START))
    removed = _retain(sessions, tracker, mail_dir, DAYS + 1)
    assert removed["applicant_erased"] == 1
    assert leftovers(engine) == []
    assert list(mail_dir.iterdir()) == []
    with tracker.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM events").scalar() == 0
    with sessions() as session:
        reasons = session.execute(select(ErasureRecord.reason)).scalars().all()
        assert set(reasons) == {"retention"}
        addresses = session.execute(select(Conversation.address)).scalars().all()
        assert all(address.startswith("erased:") for address in addresses)


def test_a_recent_conversation_keeps_the_registration(
    sessions: sessionmaker,
    engine: Engine,
    tracker: Engine,
    mail_dir: Path,
    person: Person,
) -> None:
    later = START + timedelta(days=DAYS)
    with sessions() as session, session.begin():
        session.execute(Applicant.__table__.update().values(updated_at=START))
        session.execute(Conversation.__table__.update().values(updated_at=later))
        session.execute(InboxMessage.__table__.update().values(received_at=START))
    add_event(tracker, person.pseudonym, "{}", later.timestamp())
    removed = _retain(sessions, tracker, mail_dir, DAYS + 1)
    assert "applicant_erased" not in removed
    assert removed["inbox_message"] == 5  # the old messages go all the same
    with sessions() as session:
        assert session.execute(select(Applicant.id)).scalar_one() == person.applicant_id
        assert session.execute(select(func.count(EmailCode.id))).scalar() == 0
    with tracker.connect() as connection:
        rows = connection.exec_driver_sql("SELECT sender_id FROM events").all()
    assert [row[0] for row in rows] == [person.pseudonym]


def test_an_unlinked_identity_that_never_registered_is_removed(
    sessions: sessionmaker, tracker: Engine, mail_dir: Path
) -> None:
    with sessions() as session, session.begin():
        session.add(
            ChannelIdentity(channel="telegram", external_id="77", created_at=START)
        )
    write_mail(mail_dir, "x@example.com", "old")
    _age_files(mail_dir)
    removed = _retain(sessions, tracker, mail_dir, DAYS + 1)
    assert removed["channel_identity"] == 1
    assert removed["mail_file"] == 1
    with sessions() as session:
        assert session.execute(select(ChannelIdentity)).first() is None


def test_retention_days_is_a_setting(tmp_path: Path) -> None:
    env = {"PRAKERJA_ENV": "test", "PRAKERJA_VAR_DIR": str(tmp_path)}
    assert load_settings(env).retention_days == 365
    assert load_settings({**env, "RETENTION_DAYS": "90"}).retention_days == 90
    for wrong in ("0", "-3", "satu tahun"):
        with pytest.raises(SettingsError, match="RETENTION_DAYS"):
            load_settings({**env, "RETENTION_DAYS": wrong})


def test_an_idle_applicant_behind_a_full_batch_of_active_ones_is_erased(
    sessions: sessionmaker,
    tracker: Engine,
    mail_dir: Path,
    desk: RegistrationDesk,
    converse: Callable[[str, str], str],
    person: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retention, "BATCH", 1)
    later = converse("sms", OTHER_PHONE)
    second = register(desk, caller_of(desk, later), serial=2)
    assert second.applicant_id is not None
    recent = START + timedelta(days=DAYS)
    with sessions() as session, session.begin():
        session.execute(Applicant.__table__.update().values(updated_at=START))
        # The first applicant (lower id) talked recently; the second did not.
        session.execute(
            Conversation.__table__.update()
            .where(Conversation.id == person.conversation_id)
            .values(updated_at=recent)
        )
        session.execute(
            Conversation.__table__.update()
            .where(Conversation.id != person.conversation_id)
            .values(updated_at=START)
        )
    removed = _retain(sessions, tracker, mail_dir, DAYS + 1)
    assert removed["applicant_erased"] == 1
    with sessions() as session:
        left = session.execute(select(Applicant.id)).scalars().all()
    assert left == [person.applicant_id]


def test_old_effect_records_and_expired_queued_mail_are_removed(
    sessions: sessionmaker, tracker: Engine, mail_dir: Path
) -> None:
    with sessions() as session, session.begin():
        claim(session, "1", "email_code", START)
        record(session, "1", "email_code", {"mail_id": 1})
        queue_mail(
            session,
            "siti@example.com",
            "Kode",
            "Kode kamu: 123456",
            now=START,
            expires_at=START + timedelta(minutes=15),
        )

    removed = _retain(sessions, tracker, mail_dir, 8)

    assert (removed["effect"], removed["mail_queue"]) == (1, 1)
    with sessions() as session:
        assert session.execute(select(Effect)).first() is None
        assert session.execute(select(QueuedMail)).first() is None
        assert session.execute(select(ErasureRecord)).first() is None


def test_expired_tokens_are_removed_and_counted(
    sessions: sessionmaker, tracker: Engine, mail_dir: Path, person: Person
) -> None:
    """The gateway's loop deletes them every 15 s; the sweep run alone does too."""
    vault = Vault(sessions, clock=lambda: START)
    token = vault.keep(person.pseudonym, "nik", "3174011508900001")
    assert token

    removed = _retain(sessions, tracker, mail_dir, TOKEN_TTL.days + 1)

    assert removed["personal_token"] == 1
    with sessions() as session:
        assert session.execute(select(PersonalToken)).first() is None
        record = session.execute(select(ErasureRecord.removed)).scalar_one()
        assert record["personal_token"] == 1
