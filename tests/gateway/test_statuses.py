"""Delivery statuses on SQLite and PostgreSQL: the usual callback is one UPDATE,
the rest (an unknown id, a late intermediate status, a bulk row's final one)
behave as the row-reading path always did."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.base import SMS
from bot.db import utcnow
from bot.gateway import statuses
from bot.gateway.statuses import record_status
from bot.messages.inbox import conversation_id
from bot.messages.models import PRIORITY_BULK, OutboxMessage
from tests.postgres import BACKENDS, migrated_sessions

KEY = "k" * 32


@pytest.fixture(params=BACKENDS)
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker]:
    with migrated_sessions(request.param, tmp_path, "statuses") as made:
        yield made


def _sent(sessions: sessionmaker, provider_id: str, priority: int | None = None) -> int:
    with sessions() as session:
        conversation = conversation_id(session, SMS, "+6281200000009", KEY)
        row = OutboxMessage(
            conversation_id=conversation,
            seq=int(provider_id[-1]),
            body={"kind": "sms", "text": "x"},
            status="sent",
            provider_message_id=provider_id,
            sent_at=utcnow(),
        )
        if priority is not None:
            row.priority = priority
        session.add(row)
        session.commit()
        return int(row.id)


def _record(sessions: sessionmaker, provider_id: str, status: str) -> tuple[bool, int]:
    """Whether the status found its row, and how many statements it took."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    with sessions() as session:
        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            found = record_status(session, provider_id, status)
            session.commit()
        finally:
            event.remove(engine, "before_cursor_execute", count)
    return found, len(statements)


def _row(session: Session, row_id: int) -> tuple[str, str | None]:
    row = session.execute(
        select(OutboxMessage.status, OutboxMessage.delivery_status).where(
            OutboxMessage.id == row_id
        )
    ).one()
    return row.status, row.delivery_status


def test_statuses_in_order_and_out_of_order(sessions: sessionmaker) -> None:
    row_id = _sent(sessions, "SM1")
    for status, expected, statements in [
        ("sent", ("sent", "sent"), 1),
        ("Delivered", ("delivered", "delivered"), 1),
        ("delivered", ("delivered", "delivered"), 1),
        ("sent", ("delivered", "delivered"), 2),  # late: read, not applied
        ("undelivered", ("undelivered", "undelivered"), 1),  # final over final
    ]:
        assert _record(sessions, "SM1", status) == (True, statements)
        with sessions() as session:
            assert _row(session, row_id) == expected
    assert _record(sessions, "SM-unknown", "delivered") == (False, 2)


def test_a_bulk_rows_final_status_moves_its_announcement(
    sessions: sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    followed: list[tuple[int, str]] = []
    monkeypatch.setattr(
        statuses,
        "follow_outbox_status",
        lambda session, row_id, status, now: followed.append((row_id, status)),
    )
    bulk = _sent(sessions, "SM2", PRIORITY_BULK)
    reply = _sent(sessions, "SM3")
    assert _record(sessions, "SM2", "sent")[0]
    assert _record(sessions, "SM3", "delivered")[0]
    assert followed == []
    assert _record(sessions, "SM2", "delivered")[0]
    assert followed == [(bulk, "delivered")]
    with sessions() as session:
        assert _row(session, bulk) == ("delivered", "delivered")
        assert _row(session, reply) == ("delivered", "delivered")
