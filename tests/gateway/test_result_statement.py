"""A turn's result in one statement on PostgreSQL writes what the five
statements write (`bot.gateway.result_statement`).

Every case is stored twice in the same database, emptied in between: once
with the five statements (the path SQLite takes), once with the one
statement; the rows written, the value returned and the adoption must be the
same.
"""

from __future__ import annotations

import functools
import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import sessionmaker

from bot import leases
from bot.channels import simulator
from bot.channels.base import TELEGRAM
from bot.gateway import claims, result_statement, results
from bot.gateway.outcome import Adoption, Outcome, Stored
from bot.group_commit import commit_alone
from bot.messages.inbox import store_inbound
from bot.messages.models import (
    INBOX_DONE,
    OUTBOX_PENDING,
    Conversation,
    InboxMessage,
    OutboxMessage,
)
from tests.gateway.conftest import PSEUDONYM_KEY
from tests.gateway.test_leases import A, worker

NOW = datetime(2026, 12, 6, 10, 0, 0)
TABLES = "outbox_message, inbox_message, conversation, gateway_process"


def store(
    sessions: sessionmaker,
    case: dict[str, Any],
    one_statement: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Any, ...]:
    """Set the case up in an emptied database, store the turn's result, and
    return everything it wrote."""
    with sessions() as session:
        session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        leases.register(session, A, NOW)
        session.commit()
        for words in ("halo", "lagi")[: 2 if case["more"] else 1]:
            store_inbound(
                session, simulator.inbound(TELEGRAM, "andi", text=words), PSEUDONYM_KEY
            )
        session.commit()
        conversation_id = session.execute(select(Conversation.id)).scalar_one()
        if case["earlier_unsent"]:
            session.add(
                OutboxMessage(
                    conversation_id=conversation_id,
                    seq=0,
                    body={"text": "sebelumnya"},
                    status=OUTBOX_PENDING,
                    next_attempt_at=NOW,
                    created_at=NOW,
                )
            )
        session.commit()
    monkeypatch.setattr(claims, "utcnow", lambda: NOW)
    held_by = worker(sessions, A)
    [held] = held_by.claims.claim(8)
    pending = held_by.claims.next_pending(held)
    assert pending is not None
    with sessions() as session:
        if case["lease_lost"]:
            session.execute(
                update(Conversation).values(lease_token=Conversation.lease_token + 1)
            )
        if case["row_done"]:
            session.execute(
                update(InboxMessage)
                .where(InboxMessage.id == pending.inbox_id)
                .values(status=INBOX_DONE)
            )
        session.commit()
    bodies = [{"text": f"balasan {n}"} for n in range(case["bodies"])]
    outcome = Outcome(
        state={"turn": 1},
        opted_out=case["opted_out"],
        bodies=bodies,
        exempt=case["exempt"],
        stored=case["stored"],
        withheld=case["withheld"],
        note="catatan",
    )
    adoption = (
        Adoption(owner=A, token=77, until=NOW + timedelta(seconds=30))
        if case["adopt"]
        else None
    )
    monkeypatch.setattr(results, "utcnow", lambda: NOW)
    monkeypatch.setattr(
        result_statement,
        "applies",
        lambda session, outcome: one_statement,
    )
    stored = commit_alone(
        sessions,
        functools.partial(
            held_by.results.complete,
            pending=pending,
            outcome=outcome,
            adoption=adoption,
        ),
    )
    with sessions() as session:
        conversation = session.execute(
            select(
                Conversation.state,
                Conversation.opted_out,
                Conversation.lease_owner,
                Conversation.lease_until,
                Conversation.lease_token,
                Conversation.not_before,
            )
        ).one()
        inbox = session.execute(
            select(
                InboxMessage.id,
                InboxMessage.status,
                InboxMessage.attempts,
                InboxMessage.processed_at,
                InboxMessage.last_error,
            ).order_by(InboxMessage.id)
        ).all()
        outbox = session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.inbox_id,
                OutboxMessage.seq,
                OutboxMessage.body,
                OutboxMessage.author,
                OutboxMessage.agent_id,
                OutboxMessage.ignore_opt_out,
                OutboxMessage.priority,
                OutboxMessage.status,
                OutboxMessage.attempts,
                OutboxMessage.last_error,
                OutboxMessage.next_attempt_at,
                OutboxMessage.created_at,
                OutboxMessage.lease_owner,
                OutboxMessage.lease_until,
                OutboxMessage.lease_token,
                OutboxMessage.send_started_at,
            ).order_by(OutboxMessage.id)
        ).all()
    adopted = (
        None
        if adoption is None
        else (
            adoption.outbox_id,
            adoption.seq if adoption.outbox_id else None,
            adoption.started_at if adoption.outbox_id else None,
        )
    )
    return stored, adopted, tuple(conversation), inbox, outbox


FACTORS = {
    "more": (False, True),
    "lease_lost": (False, True),
    "row_done": (False, True),
    "bodies": (0, 1, 3),
    "adopt": (False, True),
    "earlier_unsent": (False, True),
}
BASE = {"opted_out": False, "exempt": 0, "stored": 0, "withheld": None}
CASES = [
    {**BASE, **dict(zip(FACTORS, values, strict=True))}
    for values in itertools.product(*FACTORS.values())
]
# a person who opted out (only the exempt reply may go), replies withheld, and
# replies stored before the turn (a callback answer)
CASES += [
    {**case, **extra}
    for case in CASES
    if not (case["lease_lost"] or case["row_done"]) and case["bodies"] == 3
    for extra in (
        {"opted_out": True},
        {"opted_out": True, "exempt": 1},
        {"withheld": "handed over"},
        {"stored": 1},
        {"stored": 3},
    )
]


@pytest.mark.parametrize(
    "case",
    CASES,
    ids=["-".join(f"{k}={v}" for k, v in case.items()) for case in CASES],
)
def test_one_statement_writes_what_five_write(
    postgres_sessions: sessionmaker,
    case: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    five = store(postgres_sessions, case, one_statement=False, monkeypatch=monkeypatch)
    one = store(postgres_sessions, case, one_statement=True, monkeypatch=monkeypatch)
    assert one == five


def test_the_cases_cover_every_way_it_ends(
    postgres_sessions: sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept, released, lost, adopted and not: the comparison above means
    something only if the cases reach each of them."""
    ends = set()
    for case in CASES[:: max(1, len(CASES) // 40)] + CASES[:8]:
        stored, adopted, *_ = store(postgres_sessions, case, True, monkeypatch)
        ends.add(stored)
        if adopted is not None:
            ends.add("adopted" if adopted[0] else "not adopted")
    assert ends >= {Stored.KEPT, Stored.RELEASED, Stored.LOST, "adopted", "not adopted"}
