"""The claim loop looks again when work it put off falls due (`wake_in`), not
only at its poll interval."""

from __future__ import annotations

import asyncio
import time

from bot.loops import ClaimLoop


class Recorder(ClaimLoop[int]):
    """Claims nothing; records when it looked."""

    def __init__(self, poll_interval: float) -> None:
        super().__init__(concurrency=1, poll_interval=poll_interval, grace=1.0)
        self.looks: list[float] = []

    async def claim(self, limit: int) -> list[int]:
        self.looks.append(time.monotonic())
        return []

    async def handle(self, item: int) -> None:
        """Nothing to handle."""


async def _run_for(loop: Recorder, seconds: float) -> None:
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(seconds)
    loop.stop()
    await asyncio.wait_for(task, timeout=5)


async def test_work_put_off_wakes_the_loop_when_due() -> None:
    loop = Recorder(poll_interval=30.0)
    started = time.monotonic()
    loop.wake_in(0.3)
    await _run_for(loop, 0.8)
    later = [look - started for look in loop.looks[1:]]
    assert later and 0.25 <= later[0] < 0.7, later
    assert len(loop.looks) == 2, "one look for the due work, then the poll"


async def test_the_earliest_due_wins_and_is_served_once() -> None:
    loop = Recorder(poll_interval=30.0)
    started = time.monotonic()
    loop.wake_in(5.0)
    loop.wake_in(0.2)
    await _run_for(loop, 0.6)
    later = [look - started for look in loop.looks[1:]]
    assert len(later) == 1 and 0.15 <= later[0] < 0.5, later


async def test_poll_every_changes_the_interval_at_once() -> None:
    loop = Recorder(poll_interval=30.0)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.1)
    loop.poll_every(0.1)
    await asyncio.sleep(0.55)
    loop.stop()
    await asyncio.wait_for(task, timeout=5)
    assert loop.poll_interval == 0.1
    assert len(loop.looks) >= 4
