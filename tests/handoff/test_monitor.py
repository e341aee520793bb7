"""The monitor: people who asked out of hours told when agents are back, a wait
grown by 5 minutes told once (even
by two monitors at once), nothing told while agents are off duty."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.handoff import (
    AgentHours,
    TicketInfo,
    claim,
    get_ticket,
    open_ticket,
    record_wait_told,
    resolve,
    wait_grew_text,
)
from bot.handoff.monitor import HandoffMonitor
from bot.messages.models import InboxMessage
from tests.handoff.conftest import T0, conversation

ALWAYS = AgentHours(opens=time(0), closes=time(23, 59))


class Clock:
    """Naive UTC time moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Agents:
    """Agents online, set by hand."""

    def __init__(self, count: int = 1) -> None:
        self.count = count

    def __call__(self, session: Session, now: datetime) -> int:
        return self.count


def _monitor(
    sessions: sessionmaker,
    clock: Clock,
    agents: Agents,
    hours: AgentHours = ALWAYS,
    woken: list[int] | None = None,
) -> HandoffMonitor:
    return HandoffMonitor(
        sessions,
        hours,
        interval=30.0,
        grace=5.0,
        on_notification=lambda: (woken if woken is not None else []).append(1),
        agents_online=agents,
        clock=clock,
    )


def _waiting(session: Session, count: int) -> list[TicketInfo]:
    """`count` open tickets, a minute apart (committed)."""
    tickets = []
    for index in range(count):
        chat = conversation(session, f"w{index}")
        moment = T0 + timedelta(minutes=index)
        tickets.append(open_ticket(session, chat, "fallback", now=moment)[0])
    session.commit()
    return tickets


def _updates(session: Session) -> list[InboxMessage]:
    session.expire_all()
    return list(
        session.execute(select(InboxMessage).order_by(InboxMessage.id)).scalars().all()
    )


async def test_people_who_asked_out_of_hours_are_told_when_agents_are_back(
    sessions: sessionmaker,
) -> None:
    with sessions() as session:
        tickets = _waiting(session, 2)  # opened while nobody was on duty
    monitor = _monitor(sessions, Clock(T0), Agents())

    assert await monitor.run_once() == 2
    assert await monitor.run_once() == 0  # told once
    with sessions() as session:
        assert [get_ticket(session, t.id).last_wait_told_minutes for t in tickets] == [
            6,
            12,
        ]
        told = {row.conversation_id: row.text for row in _updates(session)}
    first, second = (told[t.conversation_id] for t in tickets)
    assert first.startswith("Petugas kami sudah mulai bekerja. Posisimu: ke-1,")
    assert second.startswith("Petugas kami sudah mulai bekerja. Posisimu: ke-2,")


async def test_a_grown_wait_is_told_once(sessions: sessionmaker) -> None:
    with sessions() as session:
        tickets = _waiting(session, 3)
        last = tickets[-1]
        record_wait_told(session, last.id, 13, now=T0)  # told: 13; now 18
        record_wait_told(session, tickets[1].id, 9, now=T0)  # 12: grew by 3 only
        record_wait_told(session, tickets[0].id, 6, now=T0)
        session.commit()
    woken: list[int] = []
    clock, agents = Clock(T0 + timedelta(minutes=3)), Agents()
    monitor = _monitor(sessions, clock, agents, woken=woken)
    assert await monitor.run_once() == 1
    assert await monitor.run_once() == 0
    with sessions() as session:
        [row] = _updates(session)
        assert row.conversation_id == last.conversation_id
        assert row.event == {"internal": "queue_update", "data": {"ticket_id": last.id}}
        assert row.text == wait_grew_text(3, timedelta(minutes=18))
        assert row.provider_id == f"internal:handoff:{last.id}:wait:18"
        told = get_ticket(session, last.id)
        assert (told.last_wait_told_minutes, told.last_told_at) == (18, clock.now)
        assert get_ticket(session, tickets[1].id).last_wait_told_minutes == 9
    assert woken == [1]


async def test_it_is_told_again_when_it_grows_again(sessions: sessionmaker) -> None:
    with sessions() as session:
        tickets = _waiting(session, 2)
        record_wait_told(session, tickets[0].id, 3, now=T0)
        record_wait_told(session, tickets[1].id, 6, now=T0)
        session.commit()
    agents = Agents(2)  # 2 x 6 / 2 = 6 minutes: as told
    monitor = _monitor(sessions, Clock(T0 + timedelta(minutes=30)), agents)
    assert await monitor.run_once() == 0
    agents.count = 1  # 12 minutes: grew by 6
    assert await monitor.run_once() == 1
    with sessions() as session:  # a slow case: handling now takes 20 minutes
        slow = open_ticket(session, conversation(session, "slow"), "complaint", now=T0)
        claim(session, slow[0].id, 99, now=T0)
        resolve(session, slow[0].id, 99, now=T0 + timedelta(minutes=20))
        session.commit()
    assert await monitor.run_once() == 2  # 1 x 20 (told 3) and 2 x 20 (told 12)
    with sessions() as session:
        claim(session, tickets[0].id, 99)  # now first in line: 20 minutes
        session.commit()
    assert await monitor.run_once() == 0  # shorter than told: nothing to say
    with sessions() as session:
        second = tickets[1].conversation_id
        texts = [r.text for r in _updates(session) if r.conversation_id == second]
        assert get_ticket(session, tickets[1].id).last_wait_told_minutes == 40
    assert texts == [
        wait_grew_text(2, timedelta(minutes=12)),
        wait_grew_text(2, timedelta(minutes=40)),
    ]


async def test_two_monitors_at_once_tell_it_once(sessions: sessionmaker) -> None:
    with sessions() as session:
        [ticket] = _waiting(session, 1)
        record_wait_told(session, ticket.id, 0, now=T0)
        session.commit()
    clock = Clock(T0)
    first, second = (_monitor(sessions, clock, Agents()) for _ in range(2))
    found = await asyncio.gather(first.claim(10), second.claim(10))
    assert [len(items) for items in found] == [1, 1]  # both see it grown
    await asyncio.gather(
        *(m.handle(i[0]) for m, i in zip((first, second), found, strict=True))
    )
    with sessions() as session:
        assert len(_updates(session)) == 1


async def test_nothing_is_told_while_agents_are_off_duty(
    sessions: sessionmaker,
) -> None:
    with sessions() as session:
        [ticket] = _waiting(session, 1)
        record_wait_told(session, ticket.id, 0, now=T0)
        session.commit()
    night = Clock(datetime(2026, 11, 30, 15, 0))  # 22:00 WIB
    monitor = _monitor(sessions, night, Agents(), hours=AgentHours())
    assert await monitor.run_once() == 0
    night.now = datetime(2026, 12, 1, 1, 0)  # 08:00 WIB
    assert await monitor.run_once() == 1
