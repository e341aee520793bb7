"""The backlog: how many messages wait, how long, and how fast they are answered.

`BacklogMonitor` runs in every gateway process. Every `backlog_interval` seconds
it reads, from the database (so for all processes together), the messages
waiting for their turn, and keeps the latest `Figures` for /healthz, the
console's supervisor page and intake (`over_capacity`). When the backlog is long
it tells the people waiting (`bot.gateway.wait_notice`).

The rate is measured without any cost per message: no row is written and no
index is added for it. Each look reads two aggregates: how many messages are
pending, and how many arrived since the previous look (rows with a higher id;
skipped ones excluded). So finished = arrived - (pending now - pending before).
Only *busy* intervals count: a message that was already waiting when the
interval began still waits at its end, so the gateway had work the whole time
and what it finished is its capacity, not the pace at which people write (that
would predict long waits for a burst the gateway answers in a second). The rate
is the rows finished per second of busy time in the last `rate_window` seconds:
None when there was no backlog in the window, 0 in a stall (messages wait,
none is finished: Rasa or the action server is down). On PostgreSQL a row
whose id was taken before a look but committed after it is missed by that
count, which can only make the rate look a little lower.

The expected wait of a message arriving now is pending / rate: 0 without a
backlog, None (unknown) in a stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.orm import Session

from bot.channels.base import Channel
from bot.db import utcnow
from bot.gateway.options import GatewayOptions
from bot.gateway.wait_notice import tell_overflowing, tell_waiting
from bot.loops import describe_error, in_thread
from bot.messages.backlog import Figures
from bot.messages.models import INBOX_PENDING, INBOX_SKIPPED, InboxMessage

log = logging.getLogger(__name__)

COUNTERS = ("notices", "overflow_notices", "skipped", "refused")
REFUSAL_LOG_EVERY = 10.0
"""Seconds between log lines about refused Telegram updates (one per episode)."""


@dataclass(frozen=True)
class Sample:
    """One look at the inbox: when, rows arrived so far, pending, oldest pending."""

    at: datetime
    arrivals: int
    pending: int
    oldest: datetime | None


class ThroughputMeter:
    """Rows finished per second while the gateway was busy, over a window."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._samples: deque[Sample] = deque()

    def add(self, sample: Sample) -> None:
        """Record a look; looks older than the window are forgotten."""
        self._samples.append(sample)
        while (
            len(self._samples) > 2
            and (sample.at - self._samples[1].at).total_seconds() >= self._window
        ):
            self._samples.popleft()

    def rate(self) -> float | None:
        """Rows per second over the busy intervals; None when none was busy."""
        finished, seconds = 0, 0.0
        samples = list(self._samples)
        for before, after in zip(samples[:-1], samples[1:], strict=True):
            span = (after.at - before.at).total_seconds()
            busy = (
                before.pending > 0
                and after.oldest is not None
                and after.oldest <= before.at
            )
            if span <= 0 or not busy:
                continue
            arrived = after.arrivals - before.arrivals
            finished += max(arrived - (after.pending - before.pending), 0)
            seconds += span
        if seconds == 0:
            return None
        return finished / seconds


def expected_wait(rows: int, rate: float | None) -> float | None:
    """Seconds until `rows` waiting rows are answered: 0 without a backlog (no
    rate) or without rows, None in a stall."""
    if rows <= 0 or rate is None:
        return 0.0
    if rate <= 0:
        return None
    return rows / rate


@dataclass(frozen=True)
class Look:
    """What one look read from the inbox."""

    pending: int
    conversations: int
    oldest: datetime | None
    arrived: int
    skipped: int
    last_id: int


def look(session: Session, after_id: int | None) -> Look:
    """Pending figures, and the rows stored after `after_id` (None: only find
    the latest id, counting nothing)."""
    pending, conversations, oldest = session.execute(
        select(
            func.count(InboxMessage.id),
            func.count(distinct(InboxMessage.conversation_id)),
            func.min(InboxMessage.received_at),
        ).where(InboxMessage.status == INBOX_PENDING)
    ).one()
    if after_id is None:
        latest = session.execute(select(func.max(InboxMessage.id))).scalar()
        return Look(int(pending), int(conversations), oldest, 0, 0, int(latest or 0))
    is_skipped = case((InboxMessage.status == INBOX_SKIPPED, 1), else_=0)
    total, skipped, latest = session.execute(
        select(
            func.count(InboxMessage.id),
            func.coalesce(func.sum(is_skipped), 0),
            func.max(InboxMessage.id),
        ).where(InboxMessage.id > after_id)
    ).one()
    return Look(
        pending=int(pending),
        conversations=int(conversations),
        oldest=oldest,
        arrived=int(total) - int(skipped),
        skipped=int(skipped),
        last_id=int(latest) if latest is not None else after_id,
    )


class BacklogMonitor:
    """Measures the backlog and tells waiting people, every `backlog_interval`."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        channels: Mapping[str, Channel],
        options: GatewayOptions,
        on_outbox: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._channels = channels
        self._options = options
        self._on_outbox = on_outbox
        self._clock = clock
        self._meter = ThroughputMeter(options.rate_window)
        self._last_id: int | None = None
        self._arrivals = 0
        self._counts: Counter[str] = Counter({name: 0 for name in COUNTERS})
        self._last_refusal_log = float("-inf")
        self._stop = asyncio.Event()
        self.figures = Figures()
        """The latest figures (all processes), refreshed every look."""

    def counts(self) -> dict[str, int]:
        """Since this process started: wait notices and overflow notices it
        stored, messages skipped at intake (all processes) and Telegram updates
        it refused."""
        return {name: self._counts[name] for name in COUNTERS}

    def over_capacity(self) -> bool:
        """Whether as many messages wait as the gateway takes (`max_pending`)."""
        return self.figures.pending >= self._options.max_pending

    def refused(self) -> None:
        """Count a refused Telegram update; log now and then, not each one."""
        self._counts["refused"] += 1
        now = time.monotonic()
        if now - self._last_refusal_log >= REFUSAL_LOG_EVERY:
            self._last_refusal_log = now
            log.warning(
                "backlog over capacity (%d messages waiting): Telegram updates "
                "refused with 503 (%d so far)",
                self.figures.pending,
                self._counts["refused"],
            )

    def as_json(self) -> dict[str, Any]:
        """Figures and counters, for /healthz."""
        return {
            **self.figures.as_json(),
            "over_capacity": self.over_capacity(),
            **self.counts(),
        }

    def tick(self) -> int:
        """Look once: refresh the figures, tell the people who wait long (each
        once per backlog episode); the number of notices stored (blocking)."""
        now = self._clock()
        with self._sessions() as session:
            seen = look(session, self._last_id)
        previous = self._last_id
        first = previous is None
        self._last_id = seen.last_id
        self._arrivals += seen.arrived
        self._counts["skipped"] += seen.skipped
        self._meter.add(Sample(now, self._arrivals, seen.pending, seen.oldest))
        rate = self._meter.rate()
        self.figures = Figures(
            measured_at=now,
            pending=seen.pending,
            conversations=seen.conversations,
            oldest_age=None
            if seen.oldest is None
            else max((now - seen.oldest).total_seconds(), 0.0),
            rate=rate,
            expected_wait=expected_wait(seen.pending, rate),
        )
        told = 0
        if not first and rate is not None and self._long(rate, seen, now):
            with self._sessions() as session:
                told = tell_waiting(
                    session, self._channels, rate, self._options.notice_wait, now
                )
            self._counts["notices"] += told
        overflowed = 0
        if seen.skipped and previous is not None:
            with self._sessions() as session:
                overflowed = tell_overflowing(session, self._channels, previous)
            self._counts["overflow_notices"] += overflowed
        if told or overflowed:
            self._on_outbox()
        return told + overflowed

    def _long(self, rate: float, seen: Look, now: datetime) -> bool:
        """Whether someone may wait `notice_wait` or more (the cheap check
        before the per-conversation one)."""
        if not seen.pending:
            return False
        threshold = self._options.notice_wait
        if rate <= 0:
            return (
                seen.oldest is not None
                and (now - seen.oldest).total_seconds() >= threshold
            )
        return seen.pending / rate >= threshold

    def stop(self) -> None:
        """End `run` after the current look."""
        self._stop.set()

    async def run(self) -> None:
        """Look every `backlog_interval` seconds until stopped; errors are
        logged and the next look tries again."""
        while not self._stop.is_set():
            try:
                await in_thread(self.tick)
            except Exception as exc:
                log.error("backlog not measured: %s", describe_error(exc))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._stop.wait(), timeout=self._options.backlog_interval
                )
