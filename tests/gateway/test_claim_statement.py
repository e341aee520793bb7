"""A claim in one statement on PostgreSQL takes what the three statements take
(`bot.gateway.claims.CLAIM_IN_ONE`), in the same order.

Each case is set up twice in the same database, emptied in between, and
claimed once with the three statements (the path SQLite takes) and once with
the one statement.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import sessionmaker

from bot import leases
from bot.channels import simulator
from bot.channels.base import SMS, TELEGRAM
from bot.gateway import claims
from bot.messages.inbox import store_inbound
from bot.messages.models import INBOX_DONE, Conversation, InboxMessage
from tests.gateway.conftest import PSEUDONYM_KEY
from tests.gateway.test_leases import A, B, worker

NOW = datetime(2026, 12, 6, 10, 0, 0)
DEAD = "host:3:dddddddd"
TABLES = "inbox_message, conversation, gateway_process"


# (address, the order of its messages among all, what holds it)
PEOPLE = (
    ("1001", (4, 9), None),
    ("1002", (1,), "live"),  # B is alive and holds it
    ("1003", (2, 7), "dead"),  # its holder stopped beating
    ("1004", (3,), "expired"),  # A's own lease ran out
    ("1005", (0,), "later"),  # it waits until later (a retry)
    ("1006", (5,), "done"),  # nothing pending
    ("1007", (6, 8), "due"),  # its wait is over
)


def claim(
    sessions: sessionmaker, limit: int, in_one: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, ...]:
    """Set the people up in an emptied database, claim as A, and return what
    was taken (in order, with the first row read) and every lease after."""
    with sessions() as session:
        session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        leases.register(session, A, NOW)
        leases.register(session, B, NOW)
        leases.register(session, DEAD, NOW - timedelta(seconds=60))
        session.commit()
        messages = sorted(
            (place, address) for address, places, _ in PEOPLE for place in places
        )
        for place, address in messages:
            store_inbound(
                session,
                simulator.inbound(
                    TELEGRAM if int(address) % 2 else SMS, address, str(place)
                ),
                PSEUDONYM_KEY,
            )
        session.commit()
        for address, _places, holder in PEOPLE:
            where = Conversation.address == f"sim:{address}"
            values: dict[str, Any] = {
                "live": {"lease_owner": B, "lease_token": 5},
                "dead": {"lease_owner": DEAD, "lease_token": 6},
                "expired": {
                    "lease_owner": A,
                    "lease_token": 7,
                    "lease_until": NOW - timedelta(seconds=1),
                },
                "later": {"not_before": NOW + timedelta(seconds=30)},
                "due": {"not_before": NOW - timedelta(seconds=1)},
                "done": {},
                None: {},
            }[holder]
            if holder in ("live", "dead"):
                values["lease_until"] = NOW + timedelta(seconds=60)
            if values:
                session.execute(
                    update(Conversation)
                    .where(where)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
            if holder == "done":
                ids = select(Conversation.id).where(where).scalar_subquery()
                session.execute(
                    update(InboxMessage)
                    .where(InboxMessage.conversation_id == ids)
                    .values(status=INBOX_DONE)
                    .execution_options(synchronize_session=False)
                )
        session.commit()
    monkeypatch.setattr(claims, "utcnow", lambda: NOW)
    claimer = worker(sessions, A)
    claimer.claims.in_one_statement = in_one
    held = claimer.claims.claim(limit)
    with sessions() as session:
        after = session.execute(
            select(
                Conversation.address,
                Conversation.lease_owner,
                Conversation.lease_token,
                Conversation.lease_until,
                Conversation.not_before,
            ).order_by(Conversation.id)
        ).all()
    return (
        [
            (h.conversation_id, h.token, h.first.inbox_id if h.first else None)
            for h in held
        ],
        after,
    )


@pytest.mark.parametrize("limit", [1, 2, 3, 8])
def test_one_statement_takes_what_three_take(
    postgres_sessions: sessionmaker, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    three = claim(postgres_sessions, limit, in_one=False, monkeypatch=monkeypatch)
    one = claim(postgres_sessions, limit, in_one=True, monkeypatch=monkeypatch)
    assert one == three
    taken = [conversation for conversation, _token, _first in one[0]]
    assert len(taken) == min(limit, 4), "1001, 1003, 1004 and 1007 may be taken"


def test_the_longest_waiting_come_first(
    postgres_sessions: sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    held, _after = claim(postgres_sessions, 8, in_one=True, monkeypatch=monkeypatch)
    first_rows = [first for _conversation, _token, first in held]
    assert first_rows == sorted(first_rows)
    with postgres_sessions() as session:
        addresses = [
            session.execute(
                select(Conversation.address).where(Conversation.id == conversation)
            ).scalar_one()
            for conversation, _token, _first in held
        ]
    assert addresses == ["sim:1003", "sim:1004", "sim:1001", "sim:1007"]
