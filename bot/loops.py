"""A loop that claims work from the database and handles each item in its own task.

Used by the conversation worker, the outbox sender and the NIK check runner. A
loop looks for work when woken (`notify`: work stored in this process, or by
another one through `bot.gateway.wakeups`), when work it put off falls due
(`wake_in`), and otherwise every poll interval. Database calls are blocking
(SQLAlchemy with sync drivers) and run in threads; a call in flight when the task
is cancelled is allowed to finish, so a commit never races the cleanup after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Generic, TypeVar

DUE_SLACK = 0.01
"""Seconds early a `wake_in` counts as come (the event loop's timers may fire a
little early: without this, the loop would look again and again until then);
`wake_in` adds as much, so the look is never before the work is due."""

SHUTDOWN_MARGIN = 5.0
"""Seconds a shutdown grace must exceed the longest call it waits for by."""

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


def describe_error(exc: BaseException) -> str:
    """The error's type and where it was raised, without its message (which may
    quote personal data), for logs."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno}"


async def in_thread(function: Callable[..., R], *args: object) -> R:
    """Run a blocking function in a thread of the loop's default executor; on
    cancellation, wait for it to end.

    The executor's future is awaited directly: `asyncio.to_thread` would add a
    task and a copy of the context to every database call, and no code run
    this way reads a context variable."""
    future = asyncio.get_running_loop().run_in_executor(None, function, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


class ClaimLoop(Generic[T]):
    """Claim up to `concurrency` items, handle each in a task, repeat when woken."""

    name = "loop"
    look_after_each_task = True
    """Look for work whenever a task ends. A loop whose tasks leave nothing
    behind for it (the conversation worker: a conversation is released only
    when none of its rows is pending) sets False: it then looks after a task
    only when it was notified while the task ran (the new work may have been
    held by that task then) or a `wake_in` waits."""

    def __init__(self, concurrency: int, poll_interval: float, grace: float) -> None:
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._grace = grace
        self._kick = asyncio.Event()
        self._stopping = False
        self._pause_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._due: float | None = None
        self._due_lock = threading.Lock()
        self._notified = 0
        self._notified_at_start: dict[asyncio.Task[None], int] = {}

    def notify(self) -> None:
        """New work may be waiting: look now instead of at the next poll."""
        self._notified += 1
        self._kick.set()

    @property
    def poll_interval(self) -> float:
        """Seconds between looks for work when nothing wakes the loop."""
        return self._poll_interval

    def poll_every(self, seconds: float) -> None:
        """Look for work at least every `seconds` (when nothing wakes the loop)."""
        self._poll_interval = seconds
        self._kick.set()

    def wake_in(self, seconds: float) -> None:
        """Look again `seconds` from now, when work this process put off falls
        due (a retry, a paced send), whatever the poll interval; thread-safe.
        The loop notices it at its next look (the end of every task is one)."""
        due = time.monotonic() + max(0.0, seconds) + DUE_SLACK
        with self._due_lock:
            if self._due is None or due < self._due:
                self._due = due

    def _until_due(self) -> float | None:
        """Seconds until the earliest `wake_in`, None when none is set; one that
        has come is forgotten (this look serves it)."""
        with self._due_lock:
            if self._due is None:
                return None
            left = self._due - time.monotonic()
            if left <= DUE_SLACK:
                self._due = None
            return left

    def stop(self) -> None:
        """Stop claiming; `run` returns once the tasks in flight are done."""
        self._stopping = True
        self._kick.set()

    @property
    def stopping(self) -> bool:
        """True once `stop` was called."""
        return self._stopping

    def spawn(
        self, work: Coroutine[Any, Any, None], look_after: bool = True
    ) -> asyncio.Task[None]:
        """Run `work` as one of the loop's tasks (drained when it stops, like
        the handled items; a failure is logged). With `look_after` False its
        end does not make the loop look for work (the work wakes it if needed)."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done if look_after else self._done_quietly)
        return task

    @property
    def in_flight(self) -> int:
        """Items (and spawned work) being handled now."""
        return len(self._tasks)

    @property
    def due_set(self) -> bool:
        """A `wake_in` is waiting for the loop's next look."""
        return self._due is not None

    def pause(self, seconds: float) -> None:
        """Claim nothing for `seconds` (a dependency is down)."""
        self._pause_until = max(self._pause_until, time.monotonic() + seconds)

    def resume(self) -> None:
        """End a pause early (the dependency answered)."""
        self._pause_until = 0.0

    async def claim(self, limit: int) -> list[T]:
        """Claim up to `limit` items for this process."""
        raise NotImplementedError

    async def handle(self, item: T) -> None:
        """Handle one claimed item (must not raise for expected failures)."""
        raise NotImplementedError

    def _done(self, task: asyncio.Task[None]) -> None:
        notified_at_start = self._notified_at_start.pop(task, None)
        self._done_quietly(task)
        if (
            self.look_after_each_task
            or notified_at_start != self._notified
            or self.due_set
        ):
            self._kick.set()

    def _done_quietly(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.error("%s: a task failed: %s", self.name, describe_error(error))
            self._kick.set()

    async def run(self) -> None:
        """Claim and handle until stopped, then let tasks in flight finish."""
        try:
            while not self._stopping:
                self._kick.clear()
                self._until_due()
                free = self._concurrency - len(self._tasks)
                paused = self._pause_until - time.monotonic()
                if free > 0 and paused <= 0:
                    try:
                        items = await self.claim(free)
                    except Exception as exc:
                        log.error(
                            "%s: claim failed: %s", self.name, describe_error(exc)
                        )
                        items = []
                    for item in items:
                        task = self.spawn(self.handle(item))
                        self._notified_at_start[task] = self._notified
                wait = self._poll_interval if paused <= 0 else min(paused, 5.0)
                due = self._until_due()
                if due is not None:
                    wait = min(wait, max(due, 0.0))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), timeout=wait)
        finally:
            await self._drain()

    async def _drain(self) -> None:
        """Wait up to the grace for the tasks, those started meanwhile
        (`spawn`) included; cancel what is left."""
        deadline = time.monotonic() + self._grace
        while self._tasks:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.wait(set(self._tasks), timeout=left)
        late = set(self._tasks)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)


def backoff(attempt: int, base: float, cap: float, jitter: float = 0.25) -> float:
    """Exponential delay for the `attempt`-th failure (1, 2, ...), capped, jittered.

    The jitter takes off up to `jitter` of the delay, so retries of many messages
    that failed together spread out instead of arriving together.
    """
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay * (1 - jitter * random.random())  # noqa: S311
