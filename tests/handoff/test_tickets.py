"""Tickets: one active per conversation (even under simultaneous opens), claims
that exactly one agent wins, assignment, replies, resolution, cancellation,
notes and the constraints behind them, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.handoff import (
    REASONS,
    TICKET_ASSIGNED,
    TICKET_CANCELLED,
    TICKET_OPEN,
    TICKET_RESOLVED,
    ConversationNotFound,
    TicketClosed,
    TicketInfo,
    TicketNotFound,
    TicketTaken,
    active_ticket,
    add_note,
    assign,
    cancel,
    claim,
    conversation_for_pseudonym,
    get_ticket,
    notes_of,
    notify_ticket,
    open_ticket,
    open_tickets,
    record_reply,
    record_wait_told,
    resolve,
    update_wait_told,
)
from bot.handoff.models import Ticket
from bot.messages.models import Conversation, InboxMessage
from bot.registry import register_applicant
from tests.handoff.conftest import T0, concurrently, conversation

AGENT, OTHER = 11, 12


def _open(
    session: Session, address: str = "100", reason: str = "request_human"
) -> TicketInfo:
    ticket, created = open_ticket(
        session, conversation(session, address), reason, now=T0
    )
    session.commit()
    assert created
    return ticket


# --- opening ----------------------------------------------------------------------


def test_a_ticket_opens_once_per_conversation(session: Session) -> None:
    chat = conversation(session, "100")
    first, created = open_ticket(session, chat, "fallback", now=T0)
    session.commit()
    again, created_again = open_ticket(session, chat, "complaint", now=T0)
    assert created and not created_again
    assert again == first
    assert (first.status, first.reason, first.channel) == (
        TICKET_OPEN,
        "fallback",
        "telegram",
    )
    assert first.agent_id is None and first.created_at == T0
    assert active_ticket(session, chat) == first


def test_after_a_ticket_closes_a_new_one_can_open(session: Session) -> None:
    first = _open(session)
    cancel(session, first.id, now=T0)
    second, created = open_ticket(session, first.conversation_id, "complaint", now=T0)
    assert created and second.id != first.id
    assert get_ticket(session, first.id).status == TICKET_CANCELLED


def test_the_applicant_and_the_sms_channel_are_recorded(session: Session) -> None:
    applicant = register_applicant(
        session,
        nik="3174011508900001",
        kk_number="3174010101150001",
        full_name="BUDI SANTOSO",
        birth_date=date(1990, 8, 15),
        policy_version="2020",
    )
    phone = conversation(session, "+6281234567890", channel="sms")
    ticket, _ = open_ticket(session, phone, "unfixable", applicant_id=applicant.id)
    assert (ticket.applicant_id, ticket.channel) == (applicant.id, "sms")


def test_unknown_reasons_and_conversations_are_refused(session: Session) -> None:
    chat = conversation(session, "100")
    with pytest.raises(ValueError, match="reason"):
        open_ticket(session, chat, "bored")
    with pytest.raises(ConversationNotFound):
        open_ticket(session, chat + 999, "fallback")
    assert active_ticket(session, chat) is None


def test_every_reason_code_is_accepted(session: Session) -> None:
    for number, reason in enumerate(REASONS):
        chat = conversation(session, f"r{number}")
        assert open_ticket(session, chat, reason)[0].reason == reason


def test_the_conversation_is_found_from_its_pseudonym(session: Session) -> None:
    chat = conversation(session, "100")
    pseudonym = session.get(Conversation, chat).pseudonym
    assert conversation_for_pseudonym(session, pseudonym) == chat
    assert conversation_for_pseudonym(session, "nobody") is None


def test_simultaneous_opens_make_one_ticket(sessions: sessionmaker) -> None:
    with sessions() as session:
        chat = conversation(session, "100")

    def attempt(index: int) -> tuple[int, bool]:
        with sessions() as session:
            ticket, created = open_ticket(session, chat, REASONS[index % 4])
            session.commit()
            return ticket.id, created

    results = concurrently(10, attempt)
    assert all(isinstance(r, tuple) for r in results), results
    assert len({ticket_id for ticket_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with sessions() as session:
        assert len(session.execute(select(Ticket.id)).all()) == 1


def test_the_database_itself_refuses_a_second_active_ticket(session: Session) -> None:
    first = _open(session)
    row = {
        "conversation_id": first.conversation_id,
        "channel": "telegram",
        "reason": "fallback",
        "status": TICKET_OPEN,
        "created_at": T0,
    }
    with pytest.raises(IntegrityError):
        session.execute(insert(Ticket.__table__).values(**row))
    session.rollback()
    closed = {**row, "status": TICKET_CANCELLED, "cancelled_at": T0}
    session.execute(
        insert(Ticket.__table__).values(**closed)
    )  # closed ones: any number
    session.commit()


@pytest.mark.parametrize(
    "values",
    [
        {"reason": "bored"},
        {"status": "waiting"},
        {"channel": "email"},
        {"status": TICKET_ASSIGNED},  # without an agent
        {"agent_id": AGENT},  # open, yet with an agent
        {"status": TICKET_RESOLVED},  # without resolved_at
    ],
)
def test_check_constraints_refuse_impossible_tickets(
    session: Session, values: dict[str, object]
) -> None:
    chat = conversation(session, "100")
    row = {
        "conversation_id": chat,
        "channel": "telegram",
        "reason": "fallback",
        "status": TICKET_OPEN,
        "created_at": T0,
        **values,
    }
    with pytest.raises(IntegrityError):
        session.execute(insert(Ticket.__table__).values(**row))
    session.rollback()


def test_open_tickets_lists_active_ones_oldest_first(session: Session) -> None:
    later = open_ticket(session, conversation(session, "2"), "fallback", now=T0)[0]
    first = open_ticket(
        session, conversation(session, "1"), "fallback", now=T0 - timedelta(minutes=5)
    )[0]
    taken = open_ticket(
        session, conversation(session, "3"), "complaint", now=T0 + timedelta(minutes=1)
    )[0]
    gone = open_ticket(session, conversation(session, "4"), "complaint", now=T0)[0]
    claim(session, taken.id, AGENT)
    resolve(session, gone.id, AGENT)
    assert [t.id for t in open_tickets(session)] == [first.id, later.id, taken.id]


# --- claiming and assigning --------------------------------------------------------


def test_an_agent_claims_an_open_ticket(session: Session) -> None:
    ticket = _open(session)
    claimed = claim(session, ticket.id, AGENT, now=T0 + timedelta(minutes=2))
    assert (claimed.status, claimed.agent_id) == (TICKET_ASSIGNED, AGENT)
    assert claimed.assigned_at == T0 + timedelta(minutes=2)
    assert claim(session, ticket.id, AGENT) == claimed  # again: nothing changes
    with pytest.raises(TicketTaken) as taken:
        claim(session, ticket.id, OTHER)
    assert taken.value.agent_id == AGENT
    assert get_ticket(session, ticket.id).agent_id == AGENT


def test_closed_and_missing_tickets_cannot_be_claimed(session: Session) -> None:
    ticket = _open(session)
    cancel(session, ticket.id)
    with pytest.raises(TicketClosed) as closed:
        claim(session, ticket.id, AGENT)
    assert closed.value.status == TICKET_CANCELLED
    with pytest.raises(TicketNotFound):
        claim(session, ticket.id + 1000, AGENT)


def test_twenty_agents_claiming_at_once_leave_one_owner(sessions: sessionmaker) -> None:
    with sessions() as session:
        ticket = _open(session)

    def attempt(agent: int) -> int:
        with sessions() as session:
            claimed = claim(session, ticket.id, 100 + agent)
            session.commit()
            return int(claimed.agent_id or 0)

    results = concurrently(20, attempt)
    winners = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, TicketTaken)]
    assert len(winners) == 1 and len(refused) == 19, results
    assert {r.agent_id for r in refused} == set(winners)
    with sessions() as session:
        assert get_ticket(session, ticket.id).agent_id == winners[0]


def test_a_supervisor_assigns_and_reassigns(session: Session) -> None:
    ticket = _open(session)
    assert assign(session, ticket.id, AGENT).agent_id == AGENT
    moved = assign(session, ticket.id, OTHER, now=T0 + timedelta(minutes=9))
    assert (moved.status, moved.agent_id) == (TICKET_ASSIGNED, OTHER)
    assert moved.assigned_at == T0 + timedelta(minutes=9)
    resolve(session, ticket.id, OTHER)
    with pytest.raises(TicketClosed):
        assign(session, ticket.id, AGENT)
    with pytest.raises(TicketNotFound):
        assign(session, ticket.id + 1000, AGENT)


# --- replying, resolving, cancelling -----------------------------------------------


def test_the_first_reply_is_recorded_once_and_takes_an_open_ticket(
    session: Session,
) -> None:
    ticket = _open(session)
    first = T0 + timedelta(minutes=3)
    replied = record_reply(session, ticket.id, AGENT, now=first)
    assert (replied.status, replied.agent_id, replied.first_reply_at) == (
        TICKET_ASSIGNED,
        AGENT,
        first,
    )
    again = record_reply(session, ticket.id, OTHER, now=first + timedelta(minutes=1))
    assert (again.first_reply_at, again.agent_id) == (first, AGENT)
    resolve(session, ticket.id, AGENT)
    with pytest.raises(TicketClosed):
        record_reply(session, ticket.id, AGENT)


def test_resolving_closes_the_ticket_once(session: Session) -> None:
    ticket = _open(session)
    claim(session, ticket.id, AGENT, now=T0 + timedelta(minutes=1))
    done = resolve(session, ticket.id, OTHER, now=T0 + timedelta(minutes=8))
    assert (done.status, done.resolved_at) == (
        TICKET_RESOLVED,
        T0 + timedelta(minutes=8),
    )
    assert done.agent_id == AGENT  # a supervisor closing it keeps the owner
    assert not done.active
    with pytest.raises(TicketClosed) as closed:
        resolve(session, ticket.id, AGENT)
    assert closed.value.status == TICKET_RESOLVED
    with pytest.raises(TicketClosed):
        cancel(session, ticket.id)
    assert active_ticket(session, ticket.conversation_id) is None


def test_an_unclaimed_ticket_resolved_is_credited_to_the_agent(
    session: Session,
) -> None:
    ticket = _open(session)
    done = resolve(session, ticket.id, AGENT, now=T0 + timedelta(minutes=4))
    assert (done.agent_id, done.assigned_at) == (AGENT, T0 + timedelta(minutes=4))


def test_cancelling_closes_an_assigned_ticket(session: Session) -> None:
    ticket = _open(session)
    claim(session, ticket.id, AGENT)
    gone = cancel(session, ticket.id, now=T0 + timedelta(minutes=2))
    assert (gone.status, gone.cancelled_at) == (
        TICKET_CANCELLED,
        T0 + timedelta(minutes=2),
    )
    with pytest.raises(TicketNotFound):
        cancel(session, ticket.id + 1000)


def test_the_wait_told_is_recorded_and_changed_only_from_what_was_read(
    session: Session,
) -> None:
    ticket = _open(session)
    told = record_wait_told(session, ticket.id, 12, now=T0)
    assert (told.last_wait_told_minutes, told.last_told_at) == (12, T0)
    assert not update_wait_told(session, ticket.id, 6, 20)  # someone changed it
    assert update_wait_told(session, ticket.id, 12, 20, now=T0 + timedelta(minutes=1))
    assert get_ticket(session, ticket.id).last_wait_told_minutes == 20
    claim(session, ticket.id, AGENT)
    assert not update_wait_told(session, ticket.id, 20, 30)  # no longer open
    with pytest.raises(ValueError):
        record_wait_told(session, ticket.id, -1)


# --- notes and notifications ----------------------------------------------------------


def test_notes_are_kept_in_order_and_refused_when_empty(session: Session) -> None:
    ticket = _open(session)
    first = add_note(session, ticket.id, AGENT, "  NIK salah ketik  ", now=T0)
    second = add_note(session, ticket.id, OTHER, "Sudah ditelepon", now=T0)
    assert first.text == "NIK salah ketik" and "NIK salah" not in repr(first)
    assert notes_of(session, ticket.id) == [first, second]
    with pytest.raises(ValueError):
        add_note(session, ticket.id, AGENT, "   ")
    with pytest.raises(ValueError):
        add_note(session, ticket.id, AGENT, "x" * 4001)
    with pytest.raises(TicketNotFound):
        add_note(session, ticket.id + 1000, AGENT, "hilang")
    resolve(session, ticket.id, AGENT)
    add_note(session, ticket.id, AGENT, "Catatan setelah selesai")
    assert len(notes_of(session, ticket.id)) == 3


def test_an_event_reaches_the_tickets_conversation(session: Session) -> None:
    ticket = _open(session, address="555")
    assert notify_ticket(
        session, ticket.id, "agent_reply", "k1", text="Halo", data={"agent_id": AGENT}
    )
    assert notify_ticket(session, ticket.id, "agent_reply", "k1", text="Halo")
    session.commit()
    [row] = session.execute(select(InboxMessage)).scalars().all()
    assert (row.conversation_id, row.text, row.provider_id) == (
        ticket.conversation_id,
        "Halo",
        "internal:k1",
    )
    assert row.event == {"internal": "agent_reply", "data": {"agent_id": AGENT}}
    with pytest.raises(TicketNotFound):
        notify_ticket(session, ticket.id + 1000, "agent_reply", "k2")
