"""`bot.thread_heartbeat`: the action server's heartbeat, written by a thread."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import leases
from bot.db import make_engine, make_sessionmaker
from bot.schema import upgrade
from bot.thread_heartbeat import ThreadHeartbeat

START = datetime(2026, 12, 6, 12, 0, 0)


class TickingClock:
    """A naive UTC clock one second further on each reading."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _heartbeat_of(sessions: object, owner: str) -> datetime | None:
    with sessions() as session:  # type: ignore[operator]
        found = session.execute(
            select(leases.processes.c.heartbeat_at).where(
                leases.processes.c.owner == owner
            )
        ).scalar_one_or_none()
    return found  # type: ignore[no-any-return]


def test_it_registers_beats_and_retires(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.db"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    owner = leases.owner_id("actions")
    heartbeat = ThreadHeartbeat(sessions, owner, interval=0.02, clock=TickingClock())

    heartbeat.start()
    try:
        first = _heartbeat_of(sessions, owner)
        assert first is not None and first > START
        deadline = time.monotonic() + 10
        while _heartbeat_of(sessions, owner) == first:  # the thread beats
            assert time.monotonic() < deadline, "no beat within 10 s"
            time.sleep(0.01)
    finally:
        heartbeat.stop()

    assert _heartbeat_of(sessions, owner) == leases.RETIRED  # free at once
    engine.dispose()


def test_a_database_not_ready_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")  # not migrated
    heartbeat = ThreadHeartbeat(make_sessionmaker(engine), "actions:x", interval=5)
    with caplog.at_level(logging.WARNING, logger="bot.thread_heartbeat"):
        heartbeat.start()
        heartbeat.stop()
    assert "heartbeat not written" in caplog.text
    engine.dispose()


def test_owners_name_their_role_and_fit_the_column() -> None:
    owner = leases.owner_id("actions")
    assert owner.startswith("actions:") and len(owner) <= 64
    assert leases.owner_id() != leases.owner_id()  # a random part
