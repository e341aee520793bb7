"""Delivery statuses that came before their send was stored, on PostgreSQL:
the send's follow-up looks for them outside a transaction, and applies what
it finds in one (`bot.gateway.statuses.apply_early_statuses`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.channels import simulator
from bot.channels.base import SMS
from bot.db import utcnow
from bot.gateway.statuses import apply_early_statuses, keep_early_status
from bot.messages.inbox import store_inbound
from bot.messages.models import (
    OUTBOX_SENT,
    Conversation,
    EarlyDeliveryStatus,
    OutboxMessage,
)
from tests.gateway.conftest import PSEUDONYM_KEY
from tests.postgres import migrated_sessions

SID = "SM" + "5" * 32


def _transaction_status(session: Session) -> int:
    driver = session.connection().connection.dbapi_connection
    return int(driver.get_transaction_status())


def _sent_sms(session: Session) -> None:
    store_inbound(
        session, simulator.inbound(SMS, "+628123", text="halo"), PSEUDONYM_KEY
    )
    conversation_id = session.execute(select(Conversation.id)).scalar_one()
    now = utcnow()
    session.add(
        OutboxMessage(
            conversation_id=conversation_id,
            seq=0,
            body={"text": "halo juga"},
            status=OUTBOX_SENT,
            provider_message_id=SID,
            next_attempt_at=now,
            created_at=now,
        )
    )


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker]:
    """Sessions on a migrated PostgreSQL database of the test's own."""
    with migrated_sessions("postgresql", tmp_path, "early_statuses") as made:
        yield made


def test_a_follow_up_that_finds_nothing_begins_no_transaction(
    sessions: sessionmaker,
) -> None:
    with sessions() as session:
        _sent_sms(session)
        session.commit()  # the send's result, then its follow-up:
        assert apply_early_statuses(session, SID) == 0
        assert _transaction_status(session) == TRANSACTION_STATUS_IDLE
        session.commit()


def test_what_a_follow_up_finds_is_applied_in_a_transaction(
    sessions: sessionmaker,
) -> None:
    with sessions() as session:
        keep_early_status(session, SID, "delivered")
        _sent_sms(session)
        session.commit()
        assert apply_early_statuses(session, SID) == 1
        assert _transaction_status(session) == TRANSACTION_STATUS_INTRANS
        session.rollback()  # nothing of it was committed on its own
        assert session.execute(select(EarlyDeliveryStatus.id)).all() != []
        assert apply_early_statuses(session, SID) == 1
        session.commit()
    with sessions() as session:
        row = session.execute(select(OutboxMessage)).scalar_one()
        assert row.delivery_status == "delivered"
        assert session.execute(select(EarlyDeliveryStatus.id)).all() == []
