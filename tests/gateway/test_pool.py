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


class OneItem(ClaimLoop[int]):
    """Claims one item once; its task waits until released."""

    look_after_each_task = False

    def __init__(self) -> None:
        super().__init__(concurrency=4, poll_interval=30.0, grace=5.0)
        self.looks = 0
        self.looked = asyncio.Event()
        self.release = asyncio.Event()
        self.handled = asyncio.Event()
        self._items = [1]

    async def claim(self, limit: int) -> list[int]:
        self.looks += 1
        self.looked.set()
        items, self._items = self._items, []
        return items

    async def handle(self, item: int) -> None:
        await self.release.wait()
        self.handled.set()


async def _next_look(loop: OneItem) -> None:
    loop.looked.clear()
    await asyncio.wait_for(loop.looked.wait(), timeout=5)


async def test_a_loop_whose_tasks_leave_nothing_does_not_look_after_each() -> None:
    loop = OneItem()
    running = asyncio.create_task(loop.run())
    await asyncio.wait_for(loop.looked.wait(), timeout=5)
    loop.release.set()
    await asyncio.wait_for(loop.handled.wait(), timeout=5)
    for _ in range(20):  # let the task's end run through the event loop
        await asyncio.sleep(0)
    assert loop.looks == 1, "nothing was notified while the task ran"
    loop.stop()
    await asyncio.wait_for(running, timeout=5)


async def test_work_notified_while_a_task_ran_is_looked_for_when_it_ends() -> None:
    loop = OneItem()
    running = asyncio.create_task(loop.run())
    await asyncio.wait_for(loop.looked.wait(), timeout=5)
    next_look = asyncio.create_task(_next_look(loop))
    await asyncio.sleep(0)
    loop.notify()  # new work, perhaps held by the running task's conversation
    await next_look  # the loop looks at once (and finds it still held)
    next_look = asyncio.create_task(_next_look(loop))
    await asyncio.sleep(0)
    loop.release.set()
    await next_look  # and again when the task ends
    loop.stop()
    await asyncio.wait_for(running, timeout=5)


async def test_a_task_started_while_the_loop_drains_is_waited_for() -> None:
    loop = OneItem()
    finished = asyncio.Event()

    async def late_work() -> None:
        for _ in range(5):
            await asyncio.sleep(0)
        finished.set()

    running = asyncio.create_task(loop.run())
    await asyncio.wait_for(loop.looked.wait(), timeout=5)
    loop.stop()  # the claimed task still runs: the loop drains
    for _ in range(5):
        await asyncio.sleep(0)
    loop.spawn(late_work())  # e.g. a reply leased by a turn that just ended
    loop.release.set()
    await asyncio.wait_for(running, timeout=5)
    assert finished.is_set(), "the drain waited for it, not cancelled it"
