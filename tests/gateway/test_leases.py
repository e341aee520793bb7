"""Lease rules on SQLite and PostgreSQL: heartbeats, takeover and fencing.

Process A holds work; process B looks for work. While A's heartbeat is fresh B
gets nothing; once it is stale (A was killed, or paused) B takes the work over at
once, without waiting for `lease_until`; and A, waking up, cannot write with the
lease it lost (fencing), even after it claimed the same row again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot import leases
from bot.channels import simulator
from bot.channels.base import TELEGRAM, SendResult
from bot.channels.simulator import SimulatorSender
from bot.db import make_engine, make_sessionmaker, utcnow
from bot.gateway.heartbeat import Heartbeat
from bot.gateway.options import GatewayOptions
from bot.gateway.outbox import SIMULATOR_LANE, OutboxSender
from bot.gateway.outcome import Adoption, Outcome, PendingMessage, Stored
from bot.gateway.rasa_client import RasaClient
from bot.gateway.worker import ConversationWorker
from bot.group_commit import GroupCommit, commit_alone
from bot.messages.inbox import store_inbound
from bot.messages.models import (
    INBOX_PENDING,
    OUTBOX_DELIVERED,
    OUTBOX_PENDING,
    Conversation,
    InboxMessage,
    OutboxMessage,
)
from bot.registry import claim_jobs, complete_job, enqueue_job, get_job, retry_job
from bot.registry.models import JOB_DONE, JOB_RUNNING
from bot.schema import upgrade
from bot.settings import Settings
from bot.verification.nik import NikCheckResult, NikRequest
from bot.verification.options import NikCheckOptions
from bot.verification.queue import NikCheckRunner
from tests.gateway.conftest import PSEUDONYM_KEY, Db, running, wait_until
from tests.postgres import BACKENDS, fresh_database
from tests.registry.conftest import register as register_applicant

OPTIONS = GatewayOptions(heartbeat_interval=1.0, heartbeat_timeout=3.0)
A, B = "host:1:aaaaaaaa", "host:2:bbbbbbbb"


@pytest.fixture(params=BACKENDS)
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker]:
    """A migrated database of each backend, with processes A and B alive."""
    with fresh_database(request.param, tmp_path, "leases") as url:
        upgrade(url)
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        with factory() as session:
            leases.register(session, A, utcnow())
            leases.register(session, B, utcnow())
            session.commit()
        yield factory
        engine.dispose()


def silence(sessions: sessionmaker, owner: str, seconds: float) -> None:
    """As if `owner` stopped beating `seconds` ago (killed, or paused)."""
    with sessions() as session:
        leases.beat(session, owner, utcnow() - timedelta(seconds=seconds))
        session.commit()


def worker(sessions: sessionmaker, owner: str) -> ConversationWorker:
    """A conversation worker of process `owner` (Rasa is never called here)."""
    return ConversationWorker(
        sessions,
        {},
        RasaClient("http://127.0.0.1:9"),
        owner,
        OPTIONS,
        writes=GroupCommit(sessions),
    )


def sender(sessions: sessionmaker, owner: str) -> OutboxSender:
    """An outbox sender of process `owner`."""
    return OutboxSender(
        sessions, {}, SimulatorSender(), owner, OPTIONS, writes=GroupCommit(sessions)
    )


def store_message(sessions: sessionmaker, user: str = "andi") -> int:
    """A pending message of a simulated Telegram chat; its conversation id."""
    with sessions() as session:
        store_inbound(
            session, simulator.inbound(TELEGRAM, user, text="halo"), PSEUDONYM_KEY
        )
        session.commit()
        return int(session.execute(select(Conversation.id)).scalar_one())


def conversation(sessions: sessionmaker, conversation_id: int) -> Conversation:
    """The conversation row as stored."""
    with sessions() as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        session.expunge(row)
        return row


# --- conversations ------------------------------------------------------------


def test_a_conversation_of_a_live_process_is_not_taken(sessions: sessionmaker) -> None:
    store_message(sessions)
    assert len(worker(sessions, A).claims.claim(8)) == 1
    silence(sessions, A, 1.0)  # late, but within the timeout
    assert worker(sessions, B).claims.claim(8) == []


def test_a_dead_process_conversation_is_taken_over_at_once(
    sessions: sessionmaker,
) -> None:
    conversation_id = store_message(sessions)
    [held] = worker(sessions, A).claims.claim(8)
    assert conversation(sessions, conversation_id).lease_until > utcnow() + timedelta(
        seconds=60
    ), "the backstop lease is still long"
    silence(sessions, A, 3.5)
    [taken] = worker(sessions, B).claims.claim(8)
    assert taken.conversation_id == conversation_id
    assert conversation(sessions, conversation_id).lease_owner == B


def test_a_starved_process_never_takes_its_own_work_over(
    sessions: sessionmaker,
) -> None:
    store_message(sessions)
    reply_id = store_reply(sessions)
    with sessions() as session:
        queue_job(session)
        cutoff = leases.stale_before(utcnow(), OPTIONS.heartbeat_timeout)
        assert len(claim_jobs(session, A, lease_seconds=60, stale_before=cutoff)) == 1
        session.commit()
    assert len(worker(sessions, A).claims.claim(8)) == 1
    assert len(sender(sessions, A)._claim({SIMULATOR_LANE: 8})) == 1
    silence(sessions, A, 3.5)  # its own heartbeat is late: its loop was starved
    assert worker(sessions, A).claims.claim(8) == [], "the turn would run twice"
    assert sender(sessions, A)._claim({SIMULATOR_LANE: 8}) == [], "sent twice"
    with sessions() as session:
        cutoff = leases.stale_before(utcnow(), OPTIONS.heartbeat_timeout)
        assert claim_jobs(session, A, lease_seconds=60, stale_before=cutoff) == []
    assert outbox_row(sessions, reply_id).lease_owner == A
    [taken] = worker(sessions, B).claims.claim(8)  # for the others it is dead
    assert taken is not None


def complete(
    held_by: ConversationWorker,
    sessions: sessionmaker,
    pending: PendingMessage,
    outcome: Outcome,
) -> Stored:
    """Store a turn's result as the group commit does, alone."""
    return commit_alone(
        sessions,
        functools.partial(held_by.results.complete, pending=pending, outcome=outcome),
    )


def test_a_paused_holder_cannot_commit_after_a_takeover(
    sessions: sessionmaker,
) -> None:
    conversation_id = store_message(sessions)
    first = worker(sessions, A)
    [held] = first.claims.claim(8)
    stale = first.claims.next_pending(held)
    assert stale is not None
    silence(sessions, A, 5.0)  # A is paused mid-turn; B takes over
    second = worker(sessions, B)
    [taken] = second.claims.claim(8)
    outcome = Outcome(state={"by": "A"}, opted_out=False, bodies=[{"text": "A"}])
    assert not complete(first, sessions, stale, outcome)
    second.claims.release(taken)  # B gives the conversation back (e.g. Rasa down)
    with sessions() as session:  # A wakes up and claims it again
        leases.beat(session, A, utcnow())
        session.commit()
    [again] = first.claims.claim(8)
    assert again.token != held.token
    assert not complete(first, sessions, stale, outcome), (
        "the old claim's write is fenced"
    )
    with sessions() as session:
        assert session.execute(select(InboxMessage.status)).scalar_one() == (
            INBOX_PENDING
        )
        assert session.execute(select(OutboxMessage)).first() is None
    fresh = first.claims.next_pending(again)
    assert fresh is not None
    assert complete(first, sessions, fresh, outcome)
    assert conversation(sessions, conversation_id).state == {"by": "A"}


def test_a_turns_first_reply_is_leased_with_it_and_no_claim_takes_it(
    sessions: sessionmaker,
) -> None:
    store_message(sessions)
    first = worker(sessions, A)
    [held] = first.claims.claim(8)
    pending = first.claims.next_pending(held)
    assert pending is not None
    outcome = Outcome(
        state={}, opted_out=False, bodies=[{"text": "satu"}, {"text": "dua"}]
    )
    adoption = Adoption(owner=A, token=77, until=utcnow() + timedelta(seconds=60))
    assert commit_alone(
        sessions,
        functools.partial(
            first.results.complete, pending=pending, outcome=outcome, adoption=adoption
        ),
    )
    assert adoption.outbox_id is not None and adoption.seq == 0
    row = outbox_row(sessions, adoption.outbox_id)
    assert (row.lease_owner, row.lease_token, row.body) == (A, 77, {"text": "satu"})
    assert row.send_started_at == adoption.started_at
    # neither process's claim takes it; the second reply waits behind it
    assert sender(sessions, B)._claim({SIMULATOR_LANE: 8}) == []
    assert sender(sessions, A)._claim({SIMULATOR_LANE: 8}) == []


def test_a_reply_behind_an_unsent_one_is_left_to_the_claim(
    sessions: sessionmaker,
) -> None:
    earlier = store_reply(sessions)  # an earlier reply of the chat, still unsent
    first = worker(sessions, A)
    with sessions() as session:
        store_inbound(
            session, simulator.inbound(TELEGRAM, "andi", text="lagi"), PSEUDONYM_KEY
        )
        session.commit()
    [held] = first.claims.claim(8)
    pending = first.claims.next_pending(held)
    assert pending is not None
    adoption = Adoption(owner=A, token=78, until=utcnow() + timedelta(seconds=60))
    outcome = Outcome(state={}, opted_out=False, bodies=[{"text": "nanti"}])
    commit_alone(
        sessions,
        functools.partial(
            first.results.complete, pending=pending, outcome=outcome, adoption=adoption
        ),
    )
    assert adoption.outbox_id is None
    [claimed] = sender(sessions, B)._claim({SIMULATOR_LANE: 8})
    assert claimed.outbox_id == earlier, "the chat's replies go out in order"


def test_a_paused_holder_can_neither_fail_nor_postpone_after_a_takeover(
    sessions: sessionmaker,
) -> None:
    conversation_id = store_message(sessions)
    first = worker(sessions, A)
    [held] = first.claims.claim(8)
    stale = first.claims.next_pending(held)
    assert stale is not None
    silence(sessions, A, 5.0)
    [taken] = worker(sessions, B).claims.claim(8)
    first.results.fail(stale, "given up", [{"text": "maaf"}], 0)
    first.results.postpone(stale, "Rasa down", 1.0, True)
    with sessions() as session:
        row = session.execute(select(InboxMessage)).scalar_one()
        assert (row.status, row.attempts, row.last_error) == (INBOX_PENDING, 0, None)
        assert session.execute(select(OutboxMessage)).first() is None
    after = conversation(sessions, conversation_id)
    assert (after.lease_owner, after.lease_token) == (B, taken.token)
    assert after.not_before is None


def test_a_clean_stop_frees_the_conversation_at_once(sessions: sessionmaker) -> None:
    store_message(sessions)
    worker(sessions, A).claims.claim(8)
    with sessions() as session:
        leases.retire(session, A)
        session.commit()
    assert len(worker(sessions, B).claims.claim(8)) == 1


def test_an_owner_without_heartbeat_keeps_the_backstop_rule(
    sessions: sessionmaker,
) -> None:
    conversation_id = store_message(sessions)
    with sessions() as session:
        session.execute(
            update(Conversation).values(
                lease_owner="old-tool", lease_until=utcnow() + timedelta(seconds=60)
            )
        )
        session.commit()
    assert worker(sessions, B).claims.claim(8) == []
    with sessions() as session:
        session.execute(
            update(Conversation).values(lease_until=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    [taken] = worker(sessions, B).claims.claim(8)
    assert taken.conversation_id == conversation_id


# --- outbox rows ----------------------------------------------------------------


def store_reply(sessions: sessionmaker) -> int:
    """A pending reply in a simulated chat; its outbox id."""
    conversation_id = store_message(sessions)
    now = utcnow()
    with sessions() as session:
        row = OutboxMessage(
            conversation_id=conversation_id,
            seq=0,
            body={"text": "halo"},
            status=OUTBOX_PENDING,
            next_attempt_at=now,
        )
        session.add(row)
        session.commit()
        return int(row.id)


def outbox_row(sessions: sessionmaker, outbox_id: int) -> OutboxMessage:
    """The outbox row as stored."""
    with sessions() as session:
        row = session.get(OutboxMessage, outbox_id)
        assert row is not None
        session.expunge(row)
        return row


def test_a_dead_process_reply_is_taken_over_and_the_old_result_fenced(
    sessions: sessionmaker,
) -> None:
    outbox_id = store_reply(sessions)
    first, second = sender(sessions, A), sender(sessions, B)
    [held] = first._claim({SIMULATOR_LANE: 8})
    silence(sessions, A, 2.0)
    assert second._claim({SIMULATOR_LANE: 8}) == []
    silence(sessions, A, 3.5)
    [taken] = second._claim({SIMULATOR_LANE: 8})
    assert taken.outbox_id == outbox_id
    assert outbox_row(sessions, outbox_id).lease_owner == B
    # B's send failed and was rescheduled; A wakes and claims the row again
    asyncio.run(
        second._finish(taken, SendResult(ok=False, error="timeout", retry_after=0))
    )
    with sessions() as session:
        session.execute(
            update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(1))
        )
        leases.beat(session, A, utcnow())
        session.commit()
    [again] = first._claim({SIMULATOR_LANE: 8})
    asyncio.run(first._finish(held, SendResult(ok=True, provider_message_id="old")))
    row = outbox_row(sessions, outbox_id)
    assert (row.status, row.provider_message_id) == (OUTBOX_PENDING, None)
    assert row.lease_owner == A, "the old claim's result did not end the new one"
    asyncio.run(first._finish(again, SendResult(ok=True, provider_message_id="new")))
    row = outbox_row(sessions, outbox_id)
    assert (row.status, row.provider_message_id) == (OUTBOX_DELIVERED, "new")


# --- NIK jobs --------------------------------------------------------------------


def queue_job(session: Session) -> int:
    """A queued NIK job; its id."""
    applicant = register_applicant(session, 1)
    job = enqueue_job(session, applicant.id, "nik")
    session.commit()
    return job.id


def test_a_dead_process_job_is_taken_over_and_the_old_result_fenced(
    sessions: sessionmaker,
) -> None:
    with sessions() as session:
        job_id = queue_job(session)
        cutoff = leases.stale_before(utcnow(), OPTIONS.heartbeat_timeout)
        [held] = claim_jobs(session, A, lease_seconds=60, stale_before=cutoff)
        session.commit()
        silence(sessions, A, 2.0)
        cutoff = leases.stale_before(utcnow(), OPTIONS.heartbeat_timeout)
        assert claim_jobs(session, B, lease_seconds=60, stale_before=cutoff) == []
        session.commit()
        silence(sessions, A, 3.5)
        cutoff = leases.stale_before(utcnow(), OPTIONS.heartbeat_timeout)
        [taken] = claim_jobs(session, B, lease_seconds=60, stale_before=cutoff)
        session.commit()
        assert (taken.id, taken.lease_owner, taken.attempts) == (job_id, B, 2)
        # B puts it back; A wakes and claims it again; its first claim is fenced
        assert retry_job(session, job_id, B, "stopped", utcnow(), attempt=2)
        session.commit()
        [again] = claim_jobs(session, A, lease_seconds=60)
        session.commit()
        assert again.attempts == 3
        assert not complete_job(session, job_id, A, "verified", attempt=held.attempts)
        session.commit()
        job = get_job(session, job_id)
        assert job is not None and (job.status, job.lease_owner) == (JOB_RUNNING, A)
        assert complete_job(session, job_id, A, "verified", attempt=again.attempts)
        session.commit()
        job = get_job(session, job_id)
        assert job is not None and job.status == JOB_DONE


class NeverAsked:
    """A NIK verifier the claims below never call."""

    async def verify(self, request: NikRequest) -> NikCheckResult:
        """Not called: these tests only claim and store."""
        raise AssertionError("not called")


def runner(sessions: sessionmaker, owner: str) -> NikCheckRunner:
    """The gateway's NIK check runner of process `owner`."""
    return NikCheckRunner(
        sessions,
        NeverAsked(),
        owner,
        NikCheckOptions(),
        grace=0.1,
        heartbeat_timeout=OPTIONS.heartbeat_timeout,
    )


def test_the_nik_runner_takes_over_a_dead_process_check(
    sessions: sessionmaker,
) -> None:
    with sessions() as session:
        job_id = queue_job(session)
    first, second = runner(sessions, A), runner(sessions, B)
    [held] = first._claim(8)
    assert second._claim(8) == []
    silence(sessions, A, 3.5)
    [taken] = second._claim(8)
    assert (taken.job.id, taken.job.lease_owner) == (job_id, B)
    assert not first._finish(held.job, "verified", "done", None), "fenced"
    assert second._finish(taken.job, "verified", "done", None)
    with sessions() as session:
        job = get_job(session, job_id)
        assert job is not None and (job.status, job.attempts) == (JOB_DONE, 2)


# --- the gateway's own heartbeat ---------------------------------------------------


def gateway_processes(db: Db) -> list[leases.GatewayProcess]:
    """The heartbeat rows."""
    with db.sessions() as session:
        return list(session.execute(select(leases.GatewayProcess)).scalars().all())


def test_a_running_gateway_beats_and_a_clean_stop_frees_its_work(
    settings: Settings, db: Db
) -> None:
    with running(settings):
        [first] = gateway_processes(db)
        owner, beat_at = first.owner, first.heartbeat_at
        wait_until(
            lambda: gateway_processes(db)[0].heartbeat_at > beat_at,
            timeout=5,
            what="a second heartbeat",
        )
        with db.sessions() as session:
            live = leases.live_processes(session, utcnow(), OPTIONS.heartbeat_timeout)
        assert live == [owner]
    [row] = gateway_processes(db)
    assert row.heartbeat_at == leases.RETIRED, "stopped: its leases are free at once"


class StepClock:
    """A clock moved by hand (naive UTC)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def test_a_late_heartbeat_is_logged_and_a_purged_row_written_again(
    sessions: sessionmaker, caplog: pytest.LogCaptureFixture
) -> None:
    clock = StepClock()
    heartbeat = Heartbeat(sessions, "host:3:cccccccc", 1.0, 3.0, clock=clock)
    heartbeat.register()
    clock.now += timedelta(seconds=1)
    with caplog.at_level(logging.WARNING, logger="bot.gateway.heartbeat"):
        heartbeat.beat()
        assert not caplog.records
        clock.now += timedelta(seconds=5)  # e.g. the process was paused
        heartbeat.beat()
    assert "late" in caplog.text
    with sessions() as session:
        assert leases.purge(session, clock.now + timedelta(seconds=1)) == 3
        session.commit()
    heartbeat.beat()
    with sessions() as session:
        live = leases.live_processes(session, clock.now, 3.0)
    assert live == ["host:3:cccccccc"]
