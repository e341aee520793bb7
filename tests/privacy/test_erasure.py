"""Erasing a person removes every trace of their data, on SQLite and PostgreSQL:
registry rows, transcripts, agents' notes, tracker events and mail files; the
audit row and an erased ticket stay, with no personal data."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from bot.handoff.models import Ticket
from bot.messages.models import Conversation, InboxMessage, OutboxMessage
from bot.privacy.erasure import (
    PURGE_DELAY,
    erase_person,
    purge_due,
    remove_mail_files,
    was_participant,
)
from bot.privacy.models import ErasureRecord, PrivacyPurge
from bot.registration.desk import RegistrationDesk
from bot.registry.models import (
    APPLICANT_PARTICIPANT,
    Applicant,
    Batch,
    BatchMembership,
)
from bot.registry.participants import LifetimeParticipant
from tests.privacy.conftest import PERSONAL, Person, leftovers
from tests.registration.conftest import SECRET, START
from tests.registry.conftest import concurrently

AT = START + timedelta(minutes=5)


def _erase(sessions: sessionmaker, person: Person) -> None:
    with sessions() as session, session.begin():
        erased = erase_person(
            session,
            SECRET,
            applicant_id=person.applicant_id,
            identity_ids=[person.identity_id],
            channel="sms",
            now=AT,
        )
    assert erased.pseudonyms == (person.pseudonym,)


def _tracker_senders(tracker: Engine) -> list[str]:
    with tracker.connect() as connection:
        rows = connection.exec_driver_sql("SELECT sender_id FROM events").all()
    return [row[0] for row in rows]


def test_erasure_then_purge_leaves_no_personal_data_anywhere(
    sessions: sessionmaker,
    engine: Engine,
    tracker: Engine,
    mail_dir: Path,
    person: Person,
) -> None:
    assert leftovers(engine), "the fixture must hold the person's data"
    _erase(sessions, person)
    with sessions() as session, session.begin():
        assert purge_due(session, tracker, AT) == 0  # Rasa may still save the turn
        assert purge_due(session, tracker, AT + PURGE_DELAY) == 1
    assert remove_mail_files(mail_dir, {PERSONAL[2].upper()}) == 1

    assert leftovers(engine) == []
    assert _tracker_senders(tracker) == ["someone-else"]
    assert [path.name for path in mail_dir.iterdir()] == [
        "20261120T030000.000000Z-b.eml"
    ]
    with sessions() as session:
        record = session.execute(select(ErasureRecord)).scalar_one()
        assert record.reason == "request"
        assert record.purged_at == AT + PURGE_DELAY
        assert record.removed["applicant"] == 1
        assert record.removed["ticket_note"] == 1
        assert record.removed["inbox_message"] == 5
        assert session.execute(select(func.count(PrivacyPurge.id))).scalar() == 0
        ticket = session.execute(select(Ticket)).scalar_one()
        assert ticket.erased_at == AT
        assert ticket.applicant_id is None
        assert session.execute(select(func.count(InboxMessage.id))).scalar() == 0
        assert session.execute(select(func.count(OutboxMessage.id))).scalar() == 0
        conversation = session.execute(select(Conversation)).scalar_one()
        assert conversation.address == f"erased:{conversation.id}"


def test_the_transcript_is_blanked_at_once_and_the_reply_still_goes_out(
    sessions: sessionmaker, engine: Engine, person: Person
) -> None:
    _erase(sessions, person)
    with sessions() as session:
        texts = session.execute(select(InboxMessage.text)).scalars().all()
        assert set(texts) == {""}
        assert session.execute(select(func.count(OutboxMessage.id))).scalar() == 0
        # Until the purge, only the address to answer on is kept.
        assert leftovers(engine) == ["conversation: " + PERSONAL[3]]


def test_a_pending_reply_delays_the_purge(
    sessions: sessionmaker, tracker: Engine, person: Person
) -> None:
    _erase(sessions, person)
    with sessions() as session, session.begin():
        session.add(
            OutboxMessage(
                conversation_id=person.conversation_id,
                seq=0,
                body={"kind": "sms", "text": "Data kamu sudah dihapus."},
            )
        )
    with sessions() as session, session.begin():
        assert purge_due(session, tracker, AT + PURGE_DELAY) == 0
    assert person.pseudonym in _tracker_senders(tracker)
    with sessions() as session, session.begin():
        session.execute(
            OutboxMessage.__table__.update().values(status="sent", sent_at=AT)
        )
    with sessions() as session, session.begin():
        assert purge_due(session, tracker, AT + 2 * PURGE_DELAY) == 1
    assert person.pseudonym not in _tracker_senders(tracker)


def test_a_participant_keeps_only_a_keyed_hash_of_the_nik(
    sessions: sessionmaker, engine: Engine, person: Person
) -> None:
    with sessions() as session, session.begin():
        session.execute(
            Applicant.__table__.update().values(status=APPLICANT_PARTICIPANT)
        )
    _erase(sessions, person)
    with sessions() as session:
        kept = session.execute(select(LifetimeParticipant.nik_hash)).scalar_one()
        assert PERSONAL[0] not in kept
        assert was_participant(session, SECRET, PERSONAL[0])
        assert not was_participant(session, b"another key", PERSONAL[0])


def test_a_registered_person_who_never_took_part_keeps_nothing(
    sessions: sessionmaker, person: Person
) -> None:
    _erase(sessions, person)
    with sessions() as session:
        assert session.execute(select(LifetimeParticipant)).first() is None
        assert not was_participant(session, SECRET, PERSONAL[0])


def test_a_batch_place_is_given_back(sessions: sessionmaker, person: Person) -> None:
    with sessions() as session, session.begin():
        batch = Batch(
            number=1,
            opens_at=START,
            closes_at=START + timedelta(days=14),
            quota=10,
            joined_count=1,
        )
        session.add(batch)
        session.flush()
        session.add(
            BatchMembership(
                applicant_id=person.applicant_id, batch_id=batch.id, joined_at=START
            )
        )
    _erase(sessions, person)
    with sessions() as session:
        assert session.execute(select(Batch.joined_count)).scalar_one() == 0
        assert session.execute(select(BatchMembership)).first() is None


def test_the_identity_the_erasing_turn_looked_up_again_is_purged(
    sessions: sessionmaker,
    engine: Engine,
    tracker: Engine,
    desk: RegistrationDesk,
    person: Person,
) -> None:
    _erase(sessions, person)
    assert desk.caller(person.pseudonym) is not None  # the same turn, after the action
    with sessions() as session, session.begin():
        assert purge_due(session, tracker, AT + PURGE_DELAY) == 1
    assert leftovers(engine) == []


def test_two_gateways_purging_at_once_purge_once_without_errors(
    sessions: sessionmaker, engine: Engine, tracker: Engine, person: Person
) -> None:
    _erase(sessions, person)

    def purge(_: int) -> int:
        with sessions() as session, session.begin():
            return purge_due(session, tracker, AT + PURGE_DELAY)

    results = concurrently(2, purge)
    assert [r for r in results if isinstance(r, BaseException)] == []
    if engine.dialect.name == "postgresql":  # SKIP LOCKED: one takes it
        assert sorted(results) == [0, 1]
    assert leftovers(engine) == []
