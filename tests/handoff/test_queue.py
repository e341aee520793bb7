"""The queue: positions, expected waits from the handling times of the last
24 hours, agents online, and the supervisor's figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from bot.handoff import (
    DEFAULT_HANDLING,
    TicketInfo,
    TicketNotFound,
    cancel,
    claim,
    expected_wait,
    mean_handling_time,
    open_queue,
    open_ticket,
    queue_position,
    queue_stats,
    recent_agents,
    resolve,
)
from tests.handoff.conftest import T0, conversation

AGENT = 21


def _ticket(
    session: Session, address: str, minutes: float = 0.0, reason: str = "fallback"
) -> TicketInfo:
    """A ticket opened `minutes` after T0 (committed)."""
    moment = T0 + timedelta(minutes=minutes)
    ticket, _ = open_ticket(session, conversation(session, address), reason, now=moment)
    session.commit()
    return ticket


def _handled(session: Session, address: str, minutes: float, ended: float) -> None:
    """A ticket claimed `ended + minutes` before T0's end mark and resolved
    `ended` minutes before T0: it took `minutes` to handle."""
    ticket = _ticket(session, address, -(ended + minutes + 1))
    claim(session, ticket.id, AGENT, now=T0 - timedelta(minutes=ended + minutes))
    resolve(session, ticket.id, AGENT, now=T0 - timedelta(minutes=ended))
    session.commit()


def test_positions_follow_the_order_of_arrival(session: Session) -> None:
    second = _ticket(session, "b", 2)
    first = _ticket(session, "a", 1)
    third = _ticket(session, "c", 3)
    assert [queue_position(session, t.id) for t in (first, second, third)] == [1, 2, 3]
    claim(session, first.id, AGENT)
    assert queue_position(session, first.id) is None
    assert [queue_position(session, t.id) for t in (second, third)] == [1, 2]
    cancel(session, second.id)
    assert queue_position(session, third.id) == 1
    with pytest.raises(TicketNotFound):
        queue_position(session, third.id + 1000)


def test_tickets_opened_at_the_same_moment_keep_their_order(session: Session) -> None:
    tickets = [_ticket(session, f"same{i}") for i in range(3)]
    assert [queue_position(session, t.id) for t in tickets] == [1, 2, 3]


def test_without_recent_history_a_ticket_takes_six_minutes(session: Session) -> None:
    _ticket(session, "a")
    second = _ticket(session, "b", 1)
    assert mean_handling_time(session, T0) == DEFAULT_HANDLING == timedelta(minutes=6)
    assert expected_wait(session, second.id, T0, 1) == timedelta(minutes=12)
    assert expected_wait(session, second.id, T0, 0) == timedelta(minutes=12)
    assert expected_wait(session, second.id, T0, 3) == timedelta(minutes=4)


def test_the_wait_uses_the_mean_handling_time_of_the_last_day(session: Session) -> None:
    _handled(session, "h1", minutes=10, ended=30)
    _handled(session, "h2", minutes=20, ended=60)
    _handled(session, "old", minutes=90, ended=25 * 60)  # over a day ago: ignored
    assert mean_handling_time(session, T0) == timedelta(minutes=15)
    waiting = [_ticket(session, f"w{i}", i) for i in range(3)]
    assert expected_wait(session, waiting[2].id, T0, 1) == timedelta(minutes=45)
    assert expected_wait(session, waiting[2].id, T0, 2) == timedelta(minutes=22.5)
    claim(session, waiting[0].id, AGENT)
    assert expected_wait(session, waiting[0].id, T0, 1) is None
    assert [(q.ticket.id, q.position, q.wait) for q in open_queue(session, T0, 1)] == [
        (waiting[1].id, 1, timedelta(minutes=15)),
        (waiting[2].id, 2, timedelta(minutes=30)),
    ]


def test_agents_online_are_estimated_from_recent_tickets(session: Session) -> None:
    assert recent_agents(session, T0) == 1  # nobody yet: at least one
    holding = _ticket(session, "a", -120)
    claim(session, holding.id, 1, now=T0 - timedelta(minutes=100))  # still holds it
    _handled(session, "b", minutes=3, ended=5)  # agent 21, 5 minutes ago
    stale = _ticket(session, "c", -200)
    claim(session, stale.id, 3, now=T0 - timedelta(minutes=190))
    resolve(session, stale.id, 3, now=T0 - timedelta(minutes=60))  # an hour ago
    assert recent_agents(session, T0) == 2


def test_queue_stats_for_the_supervisor(session: Session) -> None:
    empty = queue_stats(session, T0)
    assert (empty.open_count, empty.oldest_wait, empty.mean_wait) == (0, None, None)
    assert empty.by_reason == {
        "request_human": 0,
        "fallback": 0,
        "complaint": 0,
        "unfixable": 0,
    }
    _ticket(session, "a", -30, reason="complaint")
    _ticket(session, "b", -10, reason="complaint")
    taken = _ticket(session, "c", -5, reason="request_human")
    claim(session, taken.id, AGENT, now=T0)
    sms, _ = open_ticket(
        session, conversation(session, "+628111", "sms"), "unfixable", now=T0
    )
    _handled(session, "d", minutes=5, ended=10)  # resolved 02:50 UTC = 09:50 WIB
    yesterday = _ticket(session, "e", -20 * 60)
    resolve(session, yesterday.id, AGENT, now=T0 - timedelta(hours=4))  # 06:00 WIB
    late = _ticket(session, "f", -24 * 60)
    resolve(session, late.id, AGENT, now=T0 - timedelta(hours=11))  # 23:00 WIB before
    stats = queue_stats(session, T0)
    assert (stats.open_count, stats.assigned_count) == (3, 1)
    assert stats.oldest_wait == timedelta(minutes=30)
    assert stats.mean_wait == timedelta(minutes=40) / 3
    assert stats.by_reason == {
        "request_human": 1,
        "fallback": 0,
        "complaint": 2,
        "unfixable": 1,
    }
    assert stats.by_channel == {"telegram": 3, "sms": 1}
    assert stats.resolved_today == 2
