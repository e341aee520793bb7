"""Tell people waiting for an agent when their expected wait grows.

`HandoffMonitor` is a `ClaimLoop` in the gateway (as the conversation worker and
the NIK checks are). Every `interval` seconds, while agents are on duty, it
reads the open tickets with their positions and expected waits. A ticket whose
wait was never recorded (opened out of hours, or the action did not record
what it told) gets the current wait as its baseline, silently. A ticket whose
wait grew by at least `threshold` minutes over what the person was last told
gets a `queue_update` internal event with `wait_grew_text`, and the new wait
becomes the one last told: both in one transaction, guarded by a conditional
UPDATE (and a once-only key), so two gateways never tell it twice. The
conversation worker is woken after the commit.

How many agents are online is a callable (`AgentsOnline`), by default estimated
from the tickets (`recent_agents`); the console can pass real presence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.handoff.events import queue_update_key
from bot.handoff.hours import AgentHours
from bot.handoff.texts import agents_back_text, wait_grew_text, wait_minutes
from bot.handoff.tickets import (
    AgentsOnline,
    notify_ticket,
    open_queue,
    recent_agents,
    update_wait_told,
)
from bot.loops import ClaimLoop, describe_error, in_thread
from bot.messages.events import QUEUE_UPDATE

log = logging.getLogger(__name__)

GROWTH_THRESHOLD_MINUTES = 5
"""Tell the person again when the wait grew by at least this much."""
MONITOR_CONCURRENCY = 4


@dataclass(frozen=True)
class GrownWait:
    """An open ticket whose expected wait grew past what the person was told."""

    ticket_id: int
    told_minutes: int | None
    """None: never told a wait (opened out of hours); agents are back now."""
    position: int
    wait: timedelta

    @property
    def minutes(self) -> int:
        """The new wait in whole minutes (as the text says it)."""
        return wait_minutes(self.wait)


class HandoffMonitor(ClaimLoop[GrownWait]):
    """Finds open tickets whose wait grew, and tells their conversations."""

    name = "handoff-monitor"

    def __init__(
        self,
        sessions: Callable[[], Session],
        hours: AgentHours,
        interval: float,
        grace: float,
        on_notification: Callable[[], None] = lambda: None,
        agents_online: AgentsOnline = recent_agents,
        clock: Callable[[], datetime] = utcnow,
        threshold_minutes: int = GROWTH_THRESHOLD_MINUTES,
    ) -> None:
        """`interval`: seconds between looks; `grace`: how long updates in flight
        may finish at stop; `on_notification` wakes the conversation worker
        after a commit; `clock` is naive UTC."""
        super().__init__(MONITOR_CONCURRENCY, interval, grace)
        self._sessions = sessions
        self._hours = hours
        self._interval = interval
        self._on_notification = on_notification
        self._agents_online = agents_online
        self._clock = clock
        self._threshold = threshold_minutes

    async def claim(self, limit: int) -> list[GrownWait]:
        """The open tickets whose wait grew, or that were never told one
        (opened out of hours: agents are back); none while agents are off duty."""
        return await in_thread(self._grown, limit)

    def _grown(self, limit: int) -> list[GrownWait]:
        now = self._clock()
        if not self._hours.is_open(now):
            return []
        grown: list[GrownWait] = []
        with self._sessions() as session:
            agents = self._agents_online(session, now)
            for queued in open_queue(session, now, agents):
                ticket, minutes = queued.ticket, wait_minutes(queued.wait)
                told = ticket.last_wait_told_minutes
                due = told is None or minutes >= told + self._threshold
                if due and len(grown) < limit:
                    grown.append(
                        GrownWait(ticket.id, told, queued.position, queued.wait)
                    )
        return grown

    async def handle(self, item: GrownWait) -> None:
        """Tell one person their new wait (once, even with several gateways)."""
        try:
            told = await in_thread(self._tell, item)
        except Exception as exc:  # the database: look again after a pause
            log.error(
                "ticket %s: wait update not stored: %s",
                item.ticket_id,
                describe_error(exc),
            )
            self.pause(self._interval)
            return
        if told:
            log.info(
                "ticket %s: wait %s -> %d min, person told",
                item.ticket_id,
                "never told" if item.told_minutes is None else item.told_minutes,
                item.minutes,
            )
            self._on_notification()

    def _tell(self, item: GrownWait) -> bool:
        now = self._clock()
        with self._sessions() as session:
            if not update_wait_told(
                session, item.ticket_id, item.told_minutes, item.minutes, now
            ):
                session.rollback()
                return False
            notify_ticket(
                session,
                item.ticket_id,
                QUEUE_UPDATE,
                queue_update_key(item.ticket_id, item.minutes),
                text=(
                    agents_back_text(item.position, item.wait)
                    if item.told_minutes is None
                    else wait_grew_text(item.position, item.wait)
                ),
                data={"ticket_id": item.ticket_id},
            )
            session.commit()
        return True

    async def run_once(self) -> int:
        """Look once and tell every grown wait; how many were found (tests,
        tools)."""
        items = await self.claim(self._concurrency * 1000)
        await asyncio.gather(*(self.handle(item) for item in items))
        return len(items)
