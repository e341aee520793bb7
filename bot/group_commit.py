"""Group commit: the short write transactions of one process, many in one.

A caller submits a job: a function of a Session that reads and writes and
returns a value, without committing. A flusher runs the jobs that are waiting,
in the order they came, in one transaction in one thread, commits once, then
hands each caller its value. While a batch is being committed, new jobs wait
for the next one: a job that comes alone runs at once (no timer, no added
delay); under load a batch takes everything that came during the last commit,
so the session's checkout, begin and commit and the thread hop are shared.
No caller hears of its job before the commit that holds it.

A job that finds it must write nothing after all (a lease lost after its first
statement) raises `AbandonError(value)`: the batch is rolled back and run again
without it, and its caller gets the value. A job that raises anything else, or
a batch whose commit fails (a deadlock between two processes' batches, a
connection lost), is rolled back and each of its jobs runs again alone, in its
own transaction, so one failing job fails only its own caller. Jobs are
therefore run more than once in those cases: they may only touch the database
(their effects on the process, such as waking a loop or counting, belong to
the caller, after its value has come back).

Jobs that lock rows name the row they lock first (`order`, for example the
conversation's channel and address): a batch runs its jobs in that order
(arrival order among equal ones, so one person's messages keep theirs), so two
processes' batches take their locks in one global order and never deadlock
each other over them.

A job may also name a follow-up (`then`), run after the batch's commit in a
second transaction of the same session, for work that must see the batch
committed first (the delivery statuses that came before the id they belong to
was stored); the follow-ups of one batch share that transaction.

asyncio's own queues and a task are all this needs; no library was found that
batches SQLAlchemy sessions this way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from bot.loops import describe_error

T = TypeVar("T")

MAX_BATCH = 64
"""Jobs in one transaction at most (a long transaction holds its locks longer)."""

log = logging.getLogger(__name__)


class AbandonError(Exception):
    """Raised by a job that must leave no write: its caller gets `value`."""

    def __init__(self, value: object) -> None:
        super().__init__("job abandoned")
        self.value = value


@dataclass
class _Job(Generic[T]):
    work: Callable[[Session], T]
    then: Callable[[Session, T], object] | None
    future: asyncio.Future[T]
    order: str = ""
    value: Any = None
    error: BaseException | None = None


class GroupCommit:
    """Runs submitted jobs in shared transactions; one batch at a time."""

    def __init__(
        self, sessions: Callable[[], Session], max_batch: int = MAX_BATCH
    ) -> None:
        self._sessions = sessions
        self._max_batch = max_batch
        self._waiting: list[_Job[Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0
        """Transactions committed with at least one job (for benches)."""
        self.jobs = 0
        """Jobs committed or abandoned (for benches)."""

    async def run(
        self,
        work: Callable[[Session], T],
        then: Callable[[Session, T], object] | None = None,
        order: str = "",
    ) -> T:
        """Run `work` in the next batch and return its value once committed;
        `then(session, value)` runs after that commit (its errors are logged,
        not raised: the job's own work is committed by then). On cancellation
        the job still runs; the caller waits for it, then is cancelled.
        `order`: where the job goes in its batch (see the module's text)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Job(work, then, future, order))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="group-commit")
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if not future.done():
                await asyncio.wait([future])
            raise

    async def _flush(self) -> None:
        """Commit batches until no job waits."""
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            batch.sort(key=_order)  # stable: arrival order among equals
            try:
                await loop.run_in_executor(None, self._commit, batch)
            except BaseException as exc:  # the thread could not run: fail them all
                for job in batch:
                    if job.error is None and not job.future.done():
                        job.error = exc
                if isinstance(exc, asyncio.CancelledError):
                    raise
            finally:
                for job in batch:
                    _settle(job)

    def _commit(self, batch: list[_Job[Any]]) -> None:
        """Run the batch in one transaction (again without any job that
        abandons); on any other error, each job alone. Runs in a thread."""
        live = list(batch)
        while live:
            try:
                self._attempt(live)
            except _AbandonedJobError as abandoned:
                live.remove(abandoned.job)
                continue
            except Exception as exc:
                if len(live) == 1:
                    live[0].error = exc
                    return
                log.warning(
                    "group commit of %d jobs failed (%s): each alone",
                    len(live),
                    describe_error(exc),
                )
                for job in live:
                    self._commit([job])
                return
            self.batches += 1
            self.jobs += len(batch)
            return
        self.jobs += len(batch)

    def _attempt(self, live: list[_Job[Any]]) -> None:
        """One transaction for the jobs, then one for their follow-ups."""
        with self._sessions() as session:
            for job in live:
                try:
                    job.value = job.work(session)
                except AbandonError as abandon:
                    session.rollback()
                    job.value = abandon.value
                    raise _AbandonedJobError(job) from None
            session.commit()
            follow = [job for job in live if job.then is not None]
            if not follow:
                return
            try:
                for job in follow:
                    assert job.then is not None
                    job.then(session, job.value)
                session.commit()
            except Exception as exc:  # the jobs are committed: not theirs to fail
                session.rollback()
                if len(follow) == 1:
                    log.error("group commit follow-up failed: %s", describe_error(exc))
                    return
                # e.g. a deadlock with another batch locking the same rows in
                # another order: alone, each takes its own locks only
                log.warning(
                    "group commit follow-ups failed together (%s): each alone",
                    describe_error(exc),
                )
                for job in follow:
                    self._follow_alone(job)

    def _follow_alone(self, job: _Job[Any]) -> None:
        """A committed job's follow-up in a transaction of its own."""
        assert job.then is not None
        with self._sessions() as session:
            try:
                job.then(session, job.value)
                session.commit()
            except Exception as exc:  # logged: the job itself is committed
                session.rollback()
                log.error("group commit follow-up failed: %s", describe_error(exc))


class _AbandonedJobError(Exception):
    def __init__(self, job: _Job[Any]) -> None:
        super().__init__("abandoned")
        self.job = job


def _order(job: _Job[Any]) -> str:
    return job.order


def _settle(job: _Job[Any]) -> None:
    if job.future.done():
        return
    if job.error is not None:
        job.future.set_exception(job.error)
    else:
        job.future.set_result(job.value)


def commit_alone(sessions: Callable[[], Session], work: Callable[[Session], T]) -> T:
    """Run one job in its own transaction, as a batch of one would (blocking):
    committed, or rolled back with the `AbandonError` value returned."""
    with sessions() as session:
        try:
            value = work(session)
        except AbandonError as abandon:
            session.rollback()
            return abandon.value  # type: ignore[return-value]
        session.commit()
        return value
