"""The effect ledger on SQLite and PostgreSQL: once per key and name, the
record in the effect's transaction, two runs at the same instant."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from bot.db import make_engine, make_sessionmaker
from bot.effects import once, recorded
from bot.effects.models import Effect
from bot.notify.models import QueuedMail
from bot.schema import upgrade
from tests.postgres import BACKENDS, fresh_database


@dataclass(frozen=True)
class Outcome:
    """A result with a secret the ledger must not keep."""

    value: int
    secret: str | None = None


@pytest.fixture(params=BACKENDS)
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker]:
    """Sessions on a migrated database of each backend."""
    with fresh_database(request.param, tmp_path, "effects") as url:
        upgrade(url)
        engine = make_engine(url)
        yield make_sessionmaker(engine)
        engine.dispose()


def mails(sessions: sessionmaker) -> int:
    """Rows in the mail queue (the effect these tests write)."""
    with sessions() as session:
        return int(
            session.execute(select(func.count()).select_from(QueuedMail)).scalar_one()
        )


def effect(session: Session, value: int = 1) -> Outcome:
    """A side effect in the ledger's transaction: one queued mail."""
    session.execute(
        insert(QueuedMail.__table__).values(
            subject="s",
            body="b",
            status="queued",
            attempts=0,
            created_at=func.now(),
            expires_at=func.now(),
        )
    )
    return Outcome(value, secret="123456")


def test_the_same_key_acts_once_and_returns_the_recorded_outcome(
    sessions: sessionmaker,
) -> None:
    def stored(result: Outcome) -> Outcome:
        return Outcome(result.value)

    first = once(sessions, "7", "mail", effect, Outcome, stored=stored)
    again = once(sessions, "7", "mail", lambda s: effect(s, 2), Outcome, stored=stored)

    assert first == Outcome(1, "123456")
    assert again == Outcome(1)  # what was recorded: without the secret
    assert mails(sessions) == 1
    with sessions() as session:
        assert "123456" not in str(recorded(session, "7", "mail"))
    once(sessions, "8", "mail", effect, Outcome)
    once(sessions, "7", "other", effect, Outcome)
    assert mails(sessions) == 3


def test_without_a_key_the_effect_runs_every_time(sessions: sessionmaker) -> None:
    once(sessions, None, "mail", effect, Outcome)
    once(sessions, None, "mail", effect, Outcome)

    assert mails(sessions) == 2
    with sessions() as session:
        assert (
            session.execute(select(func.count()).select_from(Effect)).scalar_one() == 0
        )


def test_an_effect_that_fails_records_nothing_and_runs_again(
    sessions: sessionmaker,
) -> None:
    def failing(session: Session) -> Outcome:
        effect(session)
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        once(sessions, "9", "mail", failing, Outcome)

    assert mails(sessions) == 0  # the effect rolled back with its record
    assert once(sessions, "9", "mail", effect, Outcome).value == 1
    assert mails(sessions) == 1


def test_two_runs_of_one_turn_at_the_same_instant_act_once(
    sessions: sessionmaker,
) -> None:
    calls: list[int] = []
    results: list[Outcome] = []

    def slow(session: Session) -> Outcome:
        calls.append(1)
        time.sleep(0.3)  # the other run reads "not done" and claims meanwhile
        return effect(session, len(calls))

    def run() -> None:
        results.append(once(sessions, "10", "mail", slow, Outcome))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(results) == 2 and results[0].value == results[1].value
    assert len(calls) == 1
    assert mails(sessions) == 1
