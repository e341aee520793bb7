"""Group commit (`bot.group_commit`): many jobs in one transaction, each caller
told only after the commit, and one job's failure or abandon never costs the
others their writes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.db import make_engine, make_sessionmaker
from bot.group_commit import AbandonError, GroupCommit, commit_alone

metadata = MetaData()
notes = Table(
    "note",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(32), unique=True),
)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker:
    engine = make_engine(f"sqlite:///{tmp_path / 'group.db'}")
    metadata.create_all(engine)
    return make_sessionmaker(engine)


def stored(sessions: sessionmaker) -> list[str]:
    with sessions() as session:
        return list(
            session.execute(select(notes.c.text).order_by(notes.c.id)).scalars()
        )


def write(text: str) -> Callable[[Session], str]:
    def job(session: Session) -> str:
        session.execute(insert(notes).values(text=text))
        return text.upper()

    return job


def abandon(session: Session) -> str:
    session.execute(insert(notes).values(text="half-written"))
    raise AbandonError("lost")


async def test_jobs_that_come_together_share_transactions_in_order(
    sessions: sessionmaker,
) -> None:
    group = GroupCommit(sessions)
    texts = [f"n{index}" for index in range(40)]
    values = await asyncio.gather(*(group.run(write(text)) for text in texts))
    assert values == [text.upper() for text in texts]
    assert stored(sessions) == texts
    assert group.jobs == 40
    assert group.batches < 40, "the jobs that waited went in one commit"


async def test_an_abandoned_job_writes_nothing_and_the_others_are_kept(
    sessions: sessionmaker,
) -> None:
    group = GroupCommit(sessions)
    values = await asyncio.gather(
        group.run(write("a")),
        group.run(write("b")),
        group.run(abandon),
        group.run(write("c")),
    )
    assert values == ["A", "B", "lost", "C"]
    assert stored(sessions) == ["a", "b", "c"]


async def test_a_failing_job_fails_only_its_caller(sessions: sessionmaker) -> None:
    group = GroupCommit(sessions)
    await group.run(write("taken"))
    results = await asyncio.gather(
        group.run(write("x")),
        group.run(write("taken")),
        group.run(write("y")),
        return_exceptions=True,
    )
    assert results[0] == "X" and results[2] == "Y"
    assert isinstance(results[1], IntegrityError)
    assert stored(sessions) == ["taken", "x", "y"]


async def test_the_follow_up_runs_after_the_commit(sessions: sessionmaker) -> None:
    group = GroupCommit(sessions)
    seen: list[list[str]] = []

    def look(session: Session, value: str) -> None:
        seen.append(stored(sessions))  # another connection: only what is committed
        session.execute(insert(notes).values(text=f"after {value}"))

    assert await group.run(write("first"), then=look) == "FIRST"
    assert seen == [["first"]]
    assert stored(sessions) == ["first", "after FIRST"]


async def test_follow_ups_that_fail_together_run_again_each_alone(
    sessions: sessionmaker,
) -> None:
    """As when two batches update the same rows in opposite orders and the
    database picks one as a deadlock's victim: alone, each goes through."""
    group = GroupCommit(sessions)
    runs: list[str] = []
    gate = threading.Event()

    def follow(session: Session, value: str) -> None:
        runs.append(value)
        if len(runs) == 2:  # the second one of the batch's transaction
            raise RuntimeError("deadlock detected")
        session.execute(insert(notes).values(text=f"after {value}"))

    def slow(session: Session) -> str:
        gate.wait(5)  # the others queue up behind this batch: one batch
        return "SLOW"

    first = asyncio.ensure_future(group.run(slow))
    await asyncio.sleep(0.05)
    together = [group.run(write(text), then=follow) for text in ("a", "b", "c")]
    gate.set()
    assert await first == "SLOW"
    assert await asyncio.gather(*together) == ["A", "B", "C"]

    assert runs == ["A", "B", "A", "B", "C"]  # together, then each alone
    assert stored(sessions) == ["a", "b", "c", "after A", "after B", "after C"]


async def test_a_cancelled_caller_still_has_its_job_committed(
    sessions: sessionmaker,
) -> None:
    group = GroupCommit(sessions)
    first = asyncio.ensure_future(group.run(write("busy")))
    second = asyncio.ensure_future(group.run(write("cancelled")))
    await asyncio.sleep(0)
    second.cancel()
    await first
    with pytest.raises(asyncio.CancelledError):
        await second
    assert stored(sessions) == ["busy", "cancelled"]


def test_commit_alone_commits_or_returns_the_abandon_value(
    sessions: sessionmaker,
) -> None:
    assert commit_alone(sessions, write("solo")) == "SOLO"
    assert commit_alone(sessions, abandon) == "lost"
    assert stored(sessions) == ["solo"]


async def test_a_batch_runs_its_jobs_in_lock_order_keeping_arrival_among_equals(
    sessions: sessionmaker,
) -> None:
    group = GroupCommit(sessions)
    queued = threading.Event()

    def first(session: Session) -> str:
        queued.wait(10)  # the batch after this one holds the four below
        return write("first")(session)

    blocker = asyncio.ensure_future(group.run(first))
    await asyncio.sleep(0)
    later = [
        asyncio.ensure_future(group.run(write(text), order=text[0]))
        for text in ("b1", "a1", "b2", "a2")
    ]
    await asyncio.sleep(0)
    queued.set()
    await asyncio.gather(blocker, *later)
    assert stored(sessions) == ["first", "a1", "a2", "b1", "b2"]
    assert group.batches == 2
