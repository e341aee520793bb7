"""Run queued NIK checks in the gateway process, and tell the person when done.

`NikCheckRunner` is a `ClaimLoop` (as the conversation worker and outbox sender
are): it claims due NIK jobs with `claim_jobs` (a lease per job, committed at
once), checks each applicant with the `NikVerifier` under an overall timeout,
and stores the outcome in one transaction that succeeds only while the lease is
still ours (the claim's attempt number is its fencing token: a result stored
after another process took the job over changes nothing):

- verified: job done, step `nik` done;
- a definitive refusal (unknown NIK, data mismatch, student, civil servant,
  already a participant, KK full): job done with that outcome, step failed with
  the outcome as reason;
- unavailable, timeout or error: job queued again after an exponential backoff
  with jitter, step pending; after `max_attempts` claims the job fails and the
  step fails with reason `unavailable`.

With every final outcome, each channel identity linked to the applicant gets the
internal event `nik_checked` in its conversation (once per job and
channel: key `nik:<job id>`), and the conversation worker is woken after the
commit. A lost lease rolls everything back and drops the result: another worker
has the job. Given `heartbeat_timeout`, jobs held by a process whose heartbeat is
older than that are claimed at once (`bot.leases`), not after their lease. Logs
carry job and applicant ids and masked NIKs only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from bot import leases
from bot.db import utcnow
from bot.loops import ClaimLoop, backoff, describe_error, in_thread
from bot.messages.events import NIK_CHECKED, enqueue_notification
from bot.policy.validation import mask_nik
from bot.registry import (
    ApplicantNotFound,
    JobInfo,
    claim_jobs,
    complete_job,
    fail_job,
    get_applicant,
    identities_of,
    retry_job,
    set_step,
)
from bot.registry.models import (
    JOB_NIK,
    STEP_DONE,
    STEP_FAILED,
    STEP_NIK,
    STEP_PENDING,
)
from bot.verification.nik import OUTCOMES, NikRequest, NikVerifier
from bot.verification.options import NikCheckOptions

log = logging.getLogger(__name__)

VERIFIED = "verified"
UNAVAILABLE = "unavailable"
REFUSALS = frozenset(OUTCOMES) - {VERIFIED, UNAVAILABLE}
"""Outcomes that are final: checking again would give the same answer."""
NO_APPLICANT = "applicant not found"


@dataclass(frozen=True)
class ClaimedCheck:
    """A claimed NIK job and what to check (None when the applicant is gone)."""

    job: JobInfo
    request: NikRequest | None = field(repr=False)
    masked_nik: str = "-"


def notification_key(job_id: int) -> str:
    """The once-only key of a job's internal events."""
    return f"nik:{job_id}"


class NikCheckRunner(ClaimLoop[ClaimedCheck]):
    """Claims due NIK jobs, runs the checks and stores their outcomes."""

    name = "nik-checks"

    def __init__(
        self,
        sessions: Callable[[], Session],
        verifier: NikVerifier,
        owner: str,
        options: NikCheckOptions,
        grace: float,
        on_notification: Callable[[], None] = lambda: None,
        heartbeat_timeout: float | None = None,
    ) -> None:
        """`owner` names this process's leases; `grace` is how long checks in
        flight may finish at stop; `on_notification` wakes the conversation
        worker once internal events are committed; `heartbeat_timeout`: take over
        the jobs of processes silent for that long (None: wait for their lease)."""
        super().__init__(options.concurrency, options.poll_interval, grace)
        self._sessions = sessions
        self._verifier = verifier
        self._owner = owner
        self._options = options
        self._on_notification = on_notification
        self._heartbeat_timeout = heartbeat_timeout

    # --- claiming -------------------------------------------------------------

    async def claim(self, limit: int) -> list[ClaimedCheck]:
        """Take the lease of up to `limit` due NIK jobs, with their applicants."""
        return await in_thread(self._claim, limit)

    def _claim(self, limit: int) -> list[ClaimedCheck]:
        now = utcnow()
        timeout = self._heartbeat_timeout
        stale = None if timeout is None else leases.stale_before(now, timeout)
        with self._sessions() as session:
            jobs = claim_jobs(
                session,
                self._owner,
                limit=limit,
                lease_seconds=self._options.lease_seconds,
                kinds=(JOB_NIK,),
                now=now,
                stale_before=stale,
            )
            session.commit()
            return [self._load(session, job) for job in jobs]

    @staticmethod
    def _load(session: Session, job: JobInfo) -> ClaimedCheck:
        try:
            applicant = get_applicant(session, job.applicant_id)
        except ApplicantNotFound:
            return ClaimedCheck(job, None)
        request = NikRequest(
            nik=applicant.nik,
            kk_number=applicant.kk_number,
            full_name=applicant.full_name,
            birth_date=applicant.birth_date,
        )
        return ClaimedCheck(job, request, mask_nik(applicant.nik))

    async def run_once(self) -> int:
        """Claim what is due now and handle it to the end; how many jobs (tests,
        tools)."""
        items = await self.claim(self._concurrency)
        await asyncio.gather(*(self.handle(item) for item in items))
        return len(items)

    # --- checking -------------------------------------------------------------

    async def handle(self, item: ClaimedCheck) -> None:
        """Run one check and store its outcome (never raises for a bad check)."""
        job = item.job
        if item.request is None:
            log.error("NIK job %s: applicant %s is gone", job.id, job.applicant_id)
            await in_thread(self._give_up_orphan, job)
            return
        try:
            result = await asyncio.wait_for(
                self._verifier.verify(item.request), timeout=self._options.timeout
            )
            outcome, error = result.outcome, None
        except asyncio.TimeoutError:
            outcome, error = None, "timeout"
        except asyncio.CancelledError:  # stopping: let another claim it soon
            await self._put_back(job)
            raise
        except Exception as exc:
            outcome, error = None, describe_error(exc)
        try:
            await self._store(item, outcome, error)
        except Exception as exc:  # the database: the lease runs out, then a retry
            log.error(
                "NIK job %s (%s): outcome not stored: %s",
                job.id,
                item.masked_nik,
                describe_error(exc),
            )

    async def _store(
        self, item: ClaimedCheck, outcome: str | None, error: str | None
    ) -> None:
        """Store a verdict, or schedule a retry (give up at `max_attempts`)."""
        job = item.job
        final = True
        if outcome == VERIFIED:
            stored = await in_thread(self._finish, job, VERIFIED, STEP_DONE, None)
        elif outcome in REFUSALS:
            stored = await in_thread(self._finish, job, outcome, STEP_FAILED, outcome)
        else:
            error = error or str(outcome)[:32]  # "unavailable"
            if job.attempts >= self._options.max_attempts:
                stored = await in_thread(self._exhausted, job, error)
                outcome = f"given up ({error})"
            else:
                final = False
                delay = backoff(
                    job.attempts, self._options.backoff_base, self._options.backoff_cap
                )
                stored = await in_thread(self._retry, job, error, delay)
                outcome = f"retry in {delay:.1f}s ({error})"
        if not stored:
            log.warning(
                "NIK job %s (%s): lease lost, result dropped", job.id, item.masked_nik
            )
            return
        log.info(
            "NIK job %s (%s) attempt %d: %s",
            job.id,
            item.masked_nik,
            job.attempts,
            outcome,
        )
        if final:
            self._on_notification()

    async def _put_back(self, job: JobInfo) -> None:
        """Release a job whose check a stop cut short: due again at once."""
        try:
            await in_thread(self._release, job)
        except Exception as exc:  # the lease runs out instead
            log.error("NIK job %s not released: %s", job.id, describe_error(exc))

    # --- transactions -----------------------------------------------------------

    def _finish(
        self, job: JobInfo, result_code: str, status: str, reason: str | None
    ) -> bool:
        """Job done, step set, linked conversations notified: all or nothing."""
        with self._sessions() as session:
            if not complete_job(
                session, job.id, self._owner, result_code, attempt=job.attempts
            ):
                session.rollback()
                return False
            set_step(session, job.applicant_id, STEP_NIK, status, reason=reason)
            self._notify(session, job)
            session.commit()
        return True

    def _exhausted(self, job: JobInfo, error: str) -> bool:
        """The verifier stayed unavailable: fail the job and the step, notify."""
        with self._sessions() as session:
            if not fail_job(
                session, job.id, self._owner, error, UNAVAILABLE, attempt=job.attempts
            ):
                session.rollback()
                return False
            set_step(
                session, job.applicant_id, STEP_NIK, STEP_FAILED, reason=UNAVAILABLE
            )
            self._notify(session, job)
            session.commit()
        return True

    def _retry(self, job: JobInfo, error: str, delay: float) -> bool:
        """Queue the job again after `delay` seconds; the step stays pending."""
        retry_at = utcnow() + timedelta(seconds=delay)
        with self._sessions() as session:
            if not retry_job(
                session, job.id, self._owner, error, retry_at, attempt=job.attempts
            ):
                session.rollback()
                return False
            set_step(session, job.applicant_id, STEP_NIK, STEP_PENDING)
            session.commit()
        return True

    def _release(self, job: JobInfo) -> None:
        with self._sessions() as session:
            retry_job(
                session, job.id, self._owner, "stopped", utcnow(), attempt=job.attempts
            )
            session.commit()

    def _give_up_orphan(self, job: JobInfo) -> None:
        with self._sessions() as session:
            fail_job(session, job.id, self._owner, NO_APPLICANT, attempt=job.attempts)
            session.commit()

    @staticmethod
    def _notify(session: Session, job: JobInfo) -> None:
        """Store `nik_checked` in each linked identity's conversation."""
        for identity in identities_of(session, job.applicant_id):
            enqueue_notification(
                session,
                identity.channel,
                identity.external_id,
                NIK_CHECKED,
                key=notification_key(job.id),
            )
