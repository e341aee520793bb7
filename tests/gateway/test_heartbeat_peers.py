"""A process notices at once when another one's heartbeat goes stale, and wakes
its loops to take the work over (`Heartbeat(on_peer_lost=...)`): at the moment
the lease becomes free, not at its next beat or poll."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from bot import leases
from bot.db import make_engine, make_sessionmaker, utcnow
from bot.gateway.heartbeat import Heartbeat
from bot.schema import upgrade

A, B = "host:1:aaaaaaaa", "host:2:bbbbbbbb"


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker]:
    """A migrated SQLite database."""
    url = f"sqlite:///{tmp_path}/peers.db"
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_a_beat_reports_a_peer_that_went_stale(sessions: sessionmaker) -> None:
    now = utcnow()
    late = [now]
    first = Heartbeat(sessions, A, 1.0, 3.0, clock=lambda: now)
    second = Heartbeat(sessions, B, 1.0, 3.0, clock=lambda: late[0])
    first.register()
    second.register()
    assert not second.beat(), "A is alive"
    late[0] = now + timedelta(seconds=2)
    assert not second.beat(), "A is still within its timeout"
    late[0] = now + timedelta(seconds=3.5)
    assert second.beat(), "A went stale: B's loops should look now"
    assert not second.beat(), "reported once"


async def test_the_peer_is_looked_at_when_it_goes_stale_not_at_the_next_beat(
    sessions: sessionmaker,
) -> None:
    interval, timeout = 2.0, 4.0
    lost = asyncio.Event()
    first = Heartbeat(sessions, A, interval, timeout)
    second = Heartbeat(sessions, B, interval, timeout, on_peer_lost=lost.set)
    await asyncio.to_thread(first.register)
    await asyncio.to_thread(second.register)
    beating = asyncio.create_task(second.run())
    try:
        await asyncio.sleep(0.3)  # B has seen A alive
        await asyncio.to_thread(first.beat)  # A's last beat
        last_beat = time.monotonic()
        await asyncio.wait_for(lost.wait(), timeout=timeout + interval + 2)
        noticed = time.monotonic() - last_beat
        assert timeout <= noticed + 0.1, "not before the lease is free"
        assert noticed < timeout + 0.9, "only at B's next beat, up to 2 s late"
    finally:
        second.stop()
        await beating


def test_a_retired_peer_is_reported(sessions: sessionmaker) -> None:
    first = Heartbeat(sessions, A, 1.0, 3.0)
    second = Heartbeat(sessions, B, 1.0, 3.0)
    first.register()
    second.register()
    assert not second.beat()
    first.retire()
    assert second.beat()
    with sessions() as session:
        assert leases.live_processes(session, utcnow(), 3.0) == [B]
