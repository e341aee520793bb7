"""The NIK check runner: outcomes, retries, leases and notifications.

Runs on a SQLite file and on PostgreSQL, with the schema built by the gateway's
migrations (gateway and registry tables), and a fake verifier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import bot.messages.models  # noqa: F401  (registers the gateway tables)
from bot.db import Base, make_engine, make_sessionmaker, utcnow
from bot.messages.events import NIK_CHECKED
from bot.messages.inbox import conversation_id
from bot.messages.models import InboxMessage
from bot.registry import (
    applicant_steps,
    enqueue_job,
    get_job,
    get_or_create_identity,
    link_identity,
    register_applicant,
)
from bot.registry.models import (
    JOB_DONE,
    JOB_FAILED,
    JOB_NIK,
    JOB_QUEUED,
    LINK_REGISTRATION,
    STEP_DONE,
    STEP_FAILED,
    STEP_NIK,
    STEP_PENDING,
    VerificationJob,
)
from bot.schema import upgrade
from bot.verification.nik import NikCheckResult, NikRequest, result_for
from bot.verification.options import NikCheckOptions
from bot.verification.queue import REFUSALS, NikCheckRunner
from tests.postgres import BACKENDS, fresh_database

NIK = "3174011508900001"
KK = "3174010101150001"
NAME = "BUDI SANTOSO"
BIRTH = date(1990, 8, 15)
CHAT = "4242"
PHONE = "+6281234567890"
KEY = "test-pseudonym-key"
OPTIONS = NikCheckOptions(
    concurrency=4,
    poll_interval=0.02,
    timeout=0.2,
    lease_seconds=30.0,
    backoff_base=5.0,
    backoff_cap=600.0,
    max_attempts=3,
)
TABLES = (  # children first
    "outbox_message",
    "inbox_message",
    "conversation",
    "email_code",
    "verification_job",
    "batch_membership",
    "registration_step",
    "consent_record",
    "channel_identity",
    "kk_count",
    "batch",
    "applicant",
)


@pytest.fixture(scope="module", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated database for this module, on each backend in turn."""
    directory = tmp_path_factory.mktemp("queue")
    with fresh_database(request.param, directory, "queue_test") as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker:
    """Sessions on empty gateway and registry tables."""
    with engine.begin() as connection:
        for table in TABLES:
            connection.execute(delete(Base.metadata.tables[table]))
    return make_sessionmaker(engine)


@dataclass
class FakeVerifier:
    """A NikVerifier answering `outcome`, raising `error`, or hanging."""

    outcome: str = "verified"
    error: Exception | None = None
    hang: bool = False

    def __post_init__(self) -> None:
        self.requests: list[NikRequest] = []
        self.started = asyncio.Event()

    async def verify(self, request: NikRequest) -> NikCheckResult:
        """Record the request, then answer as configured."""
        self.requests.append(request)
        self.started.set()
        if self.hang:
            await asyncio.Event().wait()
        if self.error is not None:
            raise self.error
        return result_for(self.outcome)


class Wakes:
    """Counts how often the runner woke the conversation worker."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def make_runner(
    sessions: sessionmaker,
    verifier: FakeVerifier,
    wakes: Wakes | None = None,
    owner: str = "runner-1",
    options: NikCheckOptions = OPTIONS,
) -> NikCheckRunner:
    """A runner on the test database."""
    return NikCheckRunner(
        sessions,
        verifier,
        owner,
        options,
        grace=0.05,
        on_notification=wakes or Wakes(),
    )


def applicant_with_job(
    sessions: sessionmaker,
    channels: tuple[tuple[str, str], ...] = (("telegram", CHAT),),
    conversations: bool = True,
) -> tuple[int, int]:
    """Register the applicant, link `channels`' identities (with a conversation
    each when `conversations`) and queue a NIK job: (applicant id, job id)."""
    with sessions() as session:
        applicant = register_applicant(
            session,
            nik=NIK,
            kk_number=KK,
            full_name=NAME,
            birth_date=BIRTH,
            policy_version="2020",
        )
        for channel, address in channels:
            identity = get_or_create_identity(session, channel, address)
            link_identity(session, identity.id, applicant.id, LINK_REGISTRATION)
            if conversations:
                conversation_id(session, channel, address, KEY)
        job = enqueue_job(session, applicant.id, JOB_NIK)
        session.commit()
    return applicant.id, job.id


def internal_rows(session: Session) -> list[InboxMessage]:
    """The inbox rows of internal events, in id order."""
    rows = session.execute(select(InboxMessage).order_by(InboxMessage.id))
    return [row for row in rows.scalars() if row.event and "internal" in row.event]


def nik_step(session: Session, applicant_id: int) -> tuple[str, str | None]:
    """The NIK step's status and failure reason."""
    step = applicant_steps(session, applicant_id)[STEP_NIK]
    return step.status, step.failure_reason


def make_due(sessions: sessionmaker, job_id: int) -> None:
    """Let a queued job's backoff pass."""
    with sessions() as session:
        session.execute(
            update(VerificationJob)
            .where(VerificationJob.id == job_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()


def expire_lease(sessions: sessionmaker, job_id: int) -> None:
    """As if the worker holding the job died: its lease runs out."""
    with sessions() as session:
        session.execute(
            update(VerificationJob)
            .where(VerificationJob.id == job_id)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
        session.commit()


# --- final outcomes -------------------------------------------------------------


async def test_a_verified_nik_completes_job_and_step_and_notifies_once(
    sessions: sessionmaker,
) -> None:
    applicant_id, job_id = applicant_with_job(sessions)
    verifier, wakes = FakeVerifier("verified"), Wakes()
    runner = make_runner(sessions, verifier, wakes)

    assert await runner.run_once() == 1

    assert verifier.requests == [NikRequest(NIK, KK, NAME, BIRTH)]
    with sessions() as session:
        job = get_job(session, job_id)
        assert job is not None
        assert (job.status, job.result_code, job.lease_owner) == (
            JOB_DONE,
            "verified",
            None,
        )
        assert nik_step(session, applicant_id) == (STEP_DONE, None)
        [row] = internal_rows(session)
        assert row.event == {"internal": NIK_CHECKED}
        assert (row.channel, row.provider_id, row.text) == (
            "telegram",
            f"internal:nik:{job_id}",
            "",
        )
        assert row.status == "pending"
    assert wakes.count == 1


@pytest.mark.parametrize("outcome", sorted(REFUSALS))
async def test_a_refusal_fails_the_step_with_the_outcome_as_reason(
    sessions: sessionmaker, outcome: str
) -> None:
    applicant_id, job_id = applicant_with_job(sessions)
    wakes = Wakes()

    assert await make_runner(sessions, FakeVerifier(outcome), wakes).run_once() == 1

    with sessions() as session:
        job = get_job(session, job_id)
        assert job is not None and (job.status, job.result_code) == (JOB_DONE, outcome)
        assert nik_step(session, applicant_id) == (STEP_FAILED, outcome)
        assert len(internal_rows(session)) == 1
    assert wakes.count == 1


async def test_every_linked_conversation_is_notified_and_missing_ones_skipped(
    sessions: sessionmaker,
) -> None:
    applicant_id, _ = applicant_with_job(sessions, (("telegram", CHAT), ("sms", PHONE)))
    with sessions() as session:  # the person never wrote over SMS
        session.execute(
            delete(bot.messages.models.Conversation).where(
                bot.messages.models.Conversation.channel == "sms"
            )
        )
        session.commit()

    await make_runner(sessions, FakeVerifier("verified")).run_once()

    with sessions() as session:
        assert [row.channel for row in internal_rows(session)] == ["telegram"]
        assert nik_step(session, applicant_id) == (STEP_DONE, None)


async def test_both_channels_get_the_event_when_both_have_a_conversation(
    sessions: sessionmaker,
) -> None:
    _, job_id = applicant_with_job(sessions, (("telegram", CHAT), ("sms", PHONE)))

    await make_runner(sessions, FakeVerifier("kk_full")).run_once()

    with sessions() as session:
        rows = internal_rows(session)
    assert sorted(row.channel for row in rows) == ["sms", "telegram"]
    assert {row.provider_id for row in rows} == {f"internal:nik:{job_id}"}


async def test_a_second_pass_finds_nothing_and_stores_no_second_event(
    sessions: sessionmaker,
) -> None:
    applicant_with_job(sessions)
    runner = make_runner(sessions, FakeVerifier("verified"))
    assert await runner.run_once() == 1

    assert await runner.run_once() == 0

    with sessions() as session:
        assert len(internal_rows(session)) == 1


# --- retries --------------------------------------------------------------------


async def test_unavailable_is_retried_later_and_the_step_stays_pending(
    sessions: sessionmaker,
) -> None:
    applicant_id, job_id = applicant_with_job(sessions)
    wakes = Wakes()
    before = utcnow()

    await make_runner(sessions, FakeVerifier("unavailable"), wakes).run_once()

    after = utcnow()
    with sessions() as session:
        job = get_job(session, job_id)
        assert job is not None
        assert (job.status, job.attempts, job.lease_owner) == (JOB_QUEUED, 1, None)
        # first retry: the 5 s base, less up to a quarter of jitter
        assert before + timedelta(seconds=3.7) <= job.next_attempt_at
        assert job.next_attempt_at <= after + timedelta(seconds=5)
        assert job.last_error is not None and "unavailable" in job.last_error
        assert nik_step(session, applicant_id) == (STEP_PENDING, None)
        assert internal_rows(session) == []
    assert wakes.count == 0


async def test_unavailable_until_max_attempts_fails_as_unavailable(
    sessions: sessionmaker,
) -> None:
    applicant_id, job_id = applicant_with_job(sessions)
    wakes = Wakes()
    runner = make_runner(sessions, FakeVerifier("unavailable"), wakes)
    delays: list[timedelta] = []
    for _ in range(OPTIONS.max_attempts - 1):
        moment = utcnow()
        assert await runner.run_once() == 1
        with sessions() as session:
            job = get_job(session, job_id)
            assert job is not None and job.status == JOB_QUEUED
            delays.append(job.next_attempt_at - moment)
            assert nik_step(session, applicant_id) == (STEP_PENDING, None)
        assert await runner.run_once() == 0, "claimed before its backoff passed"
        make_due(sessions, job_id)

    assert await runner.run_once() == 1

    assert delays[1] > delays[0], "the backoff grows"
    with sessions() as session:
        job = get_job(session, job_id)
        assert job is not None
        assert (job.status, job.attempts, job.result_code) == (
            JOB_FAILED,
            OPTIONS.max_attempts,
            "unavailable",
        )
        assert nik_step(session, applicant_id) == (STEP_FAILED, "unavailable")
        assert len(internal_rows(session)) == 1
    assert wakes.count == 1


async def test_a_verifier_that_hangs_times_out_and_is_retried(
    sessions: sessionmaker,
) -> None:
    applicant_id, job_id = applicant_with_job(sessions)

    await make_runner(sessions, FakeVerifier(hang=True)).run_once()

    with sessions() as session:
        job = get_job(session, job_id)
        assert job is not None
        assert (job.status, job.last_error) == (JOB_QUEUED, "timeout")
        assert job.next_attempt_at > utcnow()
        assert nik_step(session, applicant_id) == (STEP_PENDING, None)


async def test_a_verifier_error_is_retried_without_its_message(
    sessions: sessionmaker,
) -> None:
    applicant_id, job_id = applicant_with_job(sessions)
    verifier = FakeVerifier(error=RuntimeError(f"cannot check {NIK}"))

    await make_runner(sessions, verifier).run_once()

    with sessions() as session:
        job = get_job(session, job_id)
        assert job is not None and job.status == JOB_QUEUED
        assert str(job.last_error).startswith("RuntimeError")
        assert NIK not in str(job.last_error)
        assert nik_step(session, applicant_id) == (STEP_PENDING, None)


# --- leases ---------------------------------------------------------------------


async def test_a_result_after_the_lease_was_lost_is_dropped(
    sessions: sessionmaker,
) -> None:
    applicant_id, job_id = applicant_with_job(sessions)
    slow = make_runner(sessions, FakeVerifier("verified"), owner="slow")
    [item] = await slow.claim(10)
    expire_lease(sessions, job_id)
    other = make_runner(sessions, FakeVerifier("data_mismatch"), owner="other")
    assert await other.run_once() == 1

    await slow.handle(item)

    with sessions() as session:
        job = get_job(session, job_id)
        assert job is not None and job.result_code == "data_mismatch"
        assert nik_step(session, applicant_id) == (STEP_FAILED, "data_mismatch")
        assert len(internal_rows(session)) == 1


async def test_a_retry_after_the_lease_was_lost_is_dropped(
    sessions: sessionmaker,
) -> None:
    applicant_id, job_id = applicant_with_job(sessions)
    slow = make_runner(sessions, FakeVerifier("unavailable"), owner="slow")
    [item] = await slow.claim(10)
    expire_lease(sessions, job_id)
    other = make_runner(sessions, FakeVerifier("verified"), owner="other")
    assert await other.run_once() == 1

    await slow.handle(item)

    with sessions() as session:
        job = get_job(session, job_id)
        assert job is not None and (job.status, job.result_code) == (
            JOB_DONE,
            "verified",
        )
        assert nik_step(session, applicant_id) == (STEP_DONE, None)


# --- the loop -------------------------------------------------------------------


async def wait_for(condition: Any, what: str) -> None:
    """Poll `condition()` until true; fail the test after a while."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def job_status(sessions: sessionmaker, job_id: int) -> tuple[str, datetime]:
    """A job's status and when it is due."""
    with sessions() as session:
        job = get_job(session, job_id)
        assert job is not None
        return job.status, job.next_attempt_at


async def test_the_running_loop_checks_a_queued_job_and_wakes_the_worker(
    sessions: sessionmaker,
) -> None:
    _, job_id = applicant_with_job(sessions)
    wakes = Wakes()
    runner = make_runner(sessions, FakeVerifier("verified"), wakes)
    task = asyncio.create_task(runner.run())
    try:
        await wait_for(lambda: wakes.count == 1, "the notification")
    finally:
        runner.stop()
        await task
    assert job_status(sessions, job_id)[0] == JOB_DONE


async def test_a_check_cut_short_by_stop_is_put_back_at_once(
    sessions: sessionmaker,
) -> None:
    applicant_id, job_id = applicant_with_job(sessions)
    verifier = FakeVerifier(hang=True)
    patient = NikCheckOptions(timeout=30.0, lease_seconds=60.0, poll_interval=0.02)
    runner = make_runner(sessions, verifier, options=patient)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(verifier.started.wait(), timeout=10)
    runner.stop()
    await task

    status, due = job_status(sessions, job_id)
    assert status == JOB_QUEUED
    assert due <= utcnow()
    with sessions() as session:
        assert nik_step(session, applicant_id)[0] != STEP_FAILED
        assert internal_rows(session) == []


def test_options_refuse_a_lease_shorter_than_a_check() -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        NikCheckOptions(timeout=30.0, lease_seconds=20.0)
