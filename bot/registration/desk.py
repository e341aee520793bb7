"""What a conversation can do with the registry: one transaction for each
operation that writes; reads run outside one (`bot.db.read_session`).

The caller is found from the conversation's pseudonym (the sender id Rasa knows):
the gateway's `conversation` table maps it to the channel and address, so Rasa
never sees a phone number and nobody can claim to be someone else by posting a
phone number to Rasa. Status is disclosed only to an identity linked to the
applicant: the SMS number used to register, or a Telegram account linked at
registration or with a code sent to the registered e-mail. Knowing a NIK never
discloses anything.

Operations with a side effect (codes, submitting, joining, linking) take the
turn's idempotency key: a repeated turn gets the recorded outcome instead of
acting again (`bot.effects`); code mails are queued in the code's transaction
(`bot.notify.queue`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bot.channels.base import SMS
from bot.db import read_session, utcnow
from bot.direct_sql import DirectStatement
from bot.effects import once, replay
from bot.messages.models import Conversation
from bot.notify.queue import queue_mail
from bot.policy.eligibility import EligibilityAnswers, assess, wave_age_refusal
from bot.policy.programme import Policy
from bot.policy.validation import mask_email
from bot.registration.mail import code_mail
from bot.registry import (
    AlreadyInBatch,
    AlreadyRegistered,
    ApplicantInfo,
    BatchClosed,
    BatchFull,
    BatchInfo,
    BatchNotFound,
    CodeCheck,
    KkCapReached,
    MembershipInfo,
    NotEligible,
    StepInfo,
    active_consent,
    applicant_steps,
    attach_consents,
    batch_by_number,
    code_usable,
    codes_sent_since,
    correct_applicant,
    create_email_code,
    enqueue_job,
    find_applicant,
    find_identity,
    get_applicant,
    get_or_create_identity,
    grant_consent,
    identities_of,
    jobs_of,
    join_batch,
    link_identity,
    memberships_of,
    open_batches,
    proven_email,
    register_applicant,
    set_step,
    unlink_identity,
    upcoming_batch,
    verify_email_code,
)
from bot.registry.email_codes import codes as email_codes
from bot.registry.models import (
    JOB_NIK,
    LINK_EMAIL_CODE,
    LINK_REGISTRATION,
    RESULT_PENDING,
    RESULT_SELECTED,
    STEP_BATCH,
    STEP_DONE,
    STEP_EMAIL,
    STEP_FAILED,
    STEP_NIK,
    STEP_PENDING,
    STEP_SELECTION,
)
from bot.registry.participants import was_participant
from bot.registry.records import JobInfo

log = logging.getLogger(__name__)

E164 = re.compile(r"\+[1-9]\d{6,14}")
CALLER_ADDRESS = DirectStatement(
    select(Conversation.channel, Conversation.address).where(
        Conversation.pseudonym == bindparam("pseudonym")
    )
)
"""The channel and address behind a pseudonym (built once: nearly every
action asks it)."""
NEWEST_CODE_OWNER = (
    select(email_codes.c.applicant_id)
    .where(email_codes.c.identity_id == bindparam("identity_id"))
    .order_by(email_codes.c.id.desc())
    .limit(1)
)
"""The applicant the identity's newest code links to (None: not a link code)."""
CONSENT_PURPOSE = "registration"
CONSENT_VERSION = "2020-04-v1"
CODE_SECRET_PURPOSE = "email-code"  # noqa: S105 (a label, not a secret)
"""The purpose of the key (`Settings.secret_for`) of e-mail codes and NIK hashes."""
# At most this many e-mail codes per window: against mail bombing and guessing.
CODE_LIMITS = ((timedelta(minutes=15), 3), (timedelta(hours=24), 8))
LINK_CODE_LIMIT = (timedelta(hours=1), 3)
# NIK failures the applicant can fix by typing the data again.
CORRECTABLE = frozenset({"unknown_nik", "data_mismatch", "unavailable"})
# Refusals of the data itself; the second one (after a correction) goes to a person.
DATA_REFUSALS = frozenset({"unknown_nik", "data_mismatch"})
REFUSALS_BEFORE_HUMAN = 2


@dataclass(frozen=True)
class Caller:
    """The person in a conversation: a channel identity, maybe an applicant."""

    identity_id: int
    channel: str
    address: str = field(repr=False)
    applicant_id: int | None


@dataclass(frozen=True)
class Details:
    """What the registration form collected (validated by the form)."""

    full_name: str = field(repr=False)
    email: str | None = field(repr=False)
    nik: str = field(repr=False)
    kk_number: str = field(repr=False)
    birth_date: date = field(repr=False)


@dataclass(frozen=True)
class CodeRequest:
    """A code issued and its mail queued (`mail_id`), or why none was issued
    (`wait_minutes`). `code` and `email` are known only to the run that issued
    it (a replayed turn gets the record: `mail_id` and `masked_email`)."""

    code: str | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)
    wait_minutes: int = 0
    mail_id: int | None = None
    masked_email: str | None = None
    usable: bool = False
    """When none was issued: the newest registration code can still be typed."""

    @property
    def issued(self) -> bool:
        """Whether a code was issued (and its mail queued)."""
        return self.mail_id is not None

    def recorded(self) -> CodeRequest:
        """What the effect ledger keeps: no code, no address in clear."""
        return replace(self, code=None, email=None)


def issue_code(
    session: Session,
    secret: bytes,
    email: str,
    purpose: str,
    now: datetime,
    *,
    identity_id: int | None = None,
    applicant_id: int | None = None,
) -> CodeRequest:
    """A new code for `email` with its mail queued in the same transaction (a
    crash before the mail is sent loses nothing: the gateway sends it)."""
    issued = create_email_code(
        session,
        secret,
        email,
        identity_id=identity_id,
        applicant_id=applicant_id,
        now=now,
    )
    subject, body = code_mail(issued.code, purpose)
    mail_id = queue_mail(
        session, email, subject, body, now=now, expires_at=issued.expires_at
    )
    return CodeRequest(issued.code, email, 0, mail_id, mask_email(email))


def _check_recorded(check: CodeCheck) -> CodeCheck:
    """A code check as the effect ledger keeps it: without the address."""
    return replace(check, email=None)


@dataclass(frozen=True)
class Submission:
    """What happened to a submitted registration.

    `outcome`: `queued` (NIK check queued), `corrected` (data replaced, check
    queued again), `registered_already` (this caller has an applicant),
    `nik_taken`, `kk_full`, `email_unproven`, `not_eligible` (`reasons` say
    why) or `no_consent`.
    """

    outcome: str
    applicant_id: int | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Standing:
    """Everything the status and next-action texts need about one applicant."""

    applicant: ApplicantInfo
    steps: dict[str, StepInfo]
    memberships: list[MembershipInfo]
    open_batches: list[BatchInfo]
    upcoming: BatchInfo | None
    nik_job: JobInfo | None
    data_refusals: int = 0
    """NIK checks that found the data wrong (unknown NIK, mismatch)."""
    now: datetime | None = None
    """When the standing was read (naive UTC): a passed purchase deadline."""

    @property
    def stuck(self) -> bool:
        """The data was refused again after a correction: a person must help."""
        return self.data_refusals >= REFUSALS_BEFORE_HUMAN and self.nik_reason in (
            DATA_REFUSALS
        )

    @property
    def current_membership(self) -> MembershipInfo | None:
        """The newest batch membership, if any."""
        if not self.memberships:
            return None
        return max(self.memberships, key=lambda item: item.joined_at)

    def step_status(self, step: str) -> str:
        """The status of one step."""
        return self.steps[step].status

    @property
    def nik_reason(self) -> str | None:
        """Why the NIK check failed, when it did."""
        step = self.steps[STEP_NIK]
        return step.failure_reason if step.status == STEP_FAILED else None

    @property
    def correctable(self) -> bool:
        """Whether typing the data again may fix the NIK check."""
        return self.nik_reason in CORRECTABLE


@dataclass(frozen=True)
class JoinResult:
    """What joining a batch gave.

    `outcome`: `joined`, `already_joined` (this very batch), `waiting` (in
    another batch's selection), `choose` (several batches are open; pick one),
    `full`/`closed`/`not_open` (`batch` is the refused one, `alternative` the one
    to join instead, if any), `none_open` (`alternative` opens next),
    `not_ready` (email or NIK not verified), `not_eligible`, `no_batch`,
    `selected` (already a participant), `revoked` (selected, and the card was
    revoked at the purchase deadline), `not_registered`.
    """

    outcome: str
    batch: BatchInfo | None = None
    alternative: BatchInfo | None = None
    choices: tuple[BatchInfo, ...] = ()
    reasons: tuple[str, ...] = ()
    alternative_open: bool = False


class RegistrationDesk:
    """Registration operations over a session factory and the active policy."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        code_secret: bytes,
        policy: Callable[[], Policy],
        clock: Callable[[], datetime] = utcnow,
        today: Callable[[], date] | None = None,
    ) -> None:
        """`code_secret` keys the HMAC of e-mail codes; `policy` gives the active
        policy on each call; `clock` is naive UTC, `today` the WIB date."""
        self._sessions = sessions
        self._secret = code_secret
        self._policy = policy
        self._clock = clock
        self._today = today or (lambda: (clock() + timedelta(hours=7)).date())

    # --- who is talking ----------------------------------------------------------

    def caller(self, pseudonym: str) -> Caller | None:
        """The identity behind a conversation pseudonym; None outside the gateway
        (e.g. a REST test client), where nothing personal is done. Read outside
        a transaction; only a first caller's identity is created in one."""
        with read_session(self._sessions) as session:
            row = CALLER_ADDRESS.execute(session, {"pseudonym": pseudonym}).first()
            if row is None:
                return None
            identity = find_identity(session, row.channel, row.address)
        if identity is None:
            with self._sessions() as session, session.begin():
                identity = get_or_create_identity(session, row.channel, row.address)
        return Caller(identity.id, row.channel, row.address, identity.applicant_id)

    # --- consent -----------------------------------------------------------------

    def has_consent(self, caller: Caller) -> bool:
        """Whether this identity (or its applicant) gave consent already."""
        with read_session(self._sessions) as session:
            return (
                active_consent(
                    session,
                    CONSENT_PURPOSE,
                    identity_id=caller.identity_id,
                    applicant_id=caller.applicant_id,
                )
                is not None
            )

    def give_consent(self, caller: Caller) -> None:
        """Record consent to process the registration data (idempotent)."""
        with self._sessions() as session, session.begin():
            grant_consent(
                session,
                CONSENT_PURPOSE,
                CONSENT_VERSION,
                identity_id=caller.identity_id,
                now=self._clock(),
            )

    # --- e-mail ------------------------------------------------------------------

    def _wait(self, session: Session, now: datetime, **owner: int | None) -> int:
        for window, limit in CODE_LIMITS:
            if codes_sent_since(session, now - window, **owner) >= limit:
                return max(int(window.total_seconds() // 60), 1)
        return 0

    def request_email_code(
        self, caller: Caller, email: str, key: str | None = None
    ) -> CodeRequest:
        """A new code for `email` with its mail queued, unless too many were
        sent lately; once per turn `key`."""
        now = self._clock()

        def work(session: Session) -> CodeRequest:
            wait = self._wait(session, now, identity_id=caller.identity_id)
            if wait:
                usable = not self._newest_code_links(session, caller) and code_usable(
                    session, identity_id=caller.identity_id, now=now
                )
                return CodeRequest(wait_minutes=wait, usable=usable)
            return issue_code(
                session,
                self._secret,
                email,
                "register",
                now,
                identity_id=caller.identity_id,
            )

        return once(
            self._sessions,
            key,
            "email_code",
            work,
            CodeRequest,
            stored=CodeRequest.recorded,
            clock=self._clock,
        )

    def check_email_code(
        self, caller: Caller, code: str, key: str | None = None
    ) -> CodeCheck:
        """Check a typed registration code (the attempt is committed either way);
        once per turn `key`.

        A newer link code (sent to an existing applicant's e-mail) is not a
        registration code: "no_code", so a new one is sent.
        """

        def work(session: Session) -> CodeCheck:
            if self._newest_code_links(session, caller):
                return CodeCheck("no_code")
            return verify_email_code(
                session,
                self._secret,
                code,
                identity_id=caller.identity_id,
                now=self._clock(),
            )

        return once(
            self._sessions,
            key,
            "email_code_check",
            work,
            CodeCheck,
            stored=_check_recorded,
            clock=self._clock,
        )

    @staticmethod
    def _newest_code_links(session: Session, caller: Caller) -> bool:
        """Whether the identity's newest code is a link code."""
        owner = session.execute(
            NEWEST_CODE_OWNER, {"identity_id": caller.identity_id}
        ).first()
        return owner is not None and owner.applicant_id is not None

    def email_proven(self, caller: Caller, email: str) -> bool:
        """Whether `email` was proven in this conversation."""
        with read_session(self._sessions) as session:
            return proven_email(session, caller.identity_id, email) is not None

    # --- submitting --------------------------------------------------------------

    def ineligibility(
        self, birth_date: date, wave: int | None = None
    ) -> tuple[str, ...]:
        """Reasons the birth date alone rules the person out (empty: none); with
        `wave`, an age cap that starts at a later wave counts from that wave."""
        policy = self._policy()
        today = self._today()
        verdict = assess(policy, EligibilityAnswers(birth_date=birth_date), today)
        if verdict.eligible is False:
            return verdict.reasons
        refusal = wave_age_refusal(policy, birth_date, today, wave)
        return (refusal,) if refusal else ()

    def submit(
        self, caller: Caller, details: Details, key: str | None = None
    ) -> Submission:
        """Create the applicant (or correct a failed one) and queue the NIK check;
        once per turn `key` (a repeated turn gets the first one's outcome)."""
        done = self.submitted(key)
        if done is not None:
            return done
        reasons = self.ineligibility(details.birth_date)
        if reasons:
            return Submission("not_eligible", caller.applicant_id, reasons)
        now = self._clock()
        return once(
            self._sessions,
            key,
            "submit",
            lambda session: self._submit(session, caller, details, now),
            Submission,
            clock=self._clock,
        )

    def submitted(self, key: str | None) -> Submission | None:
        """What the submit of turn `key` gave, when it ran already."""
        found, outcome = replay(self._sessions, key, "submit", Submission)
        return outcome if found else None

    def _submit(
        self, session: Session, caller: Caller, details: Details, now: datetime
    ) -> Submission:
        policy = self._policy()
        if caller.applicant_id is not None:
            return self._correct(session, caller.applicant_id, details, now)
        if (
            active_consent(session, CONSENT_PURPOSE, identity_id=caller.identity_id)
            is None
        ):
            return Submission("no_consent")
        proven_at = (
            proven_email(session, caller.identity_id, details.email)
            if details.email
            else None
        )
        if proven_at is None:
            return Submission("email_unproven")
        if was_participant(session, self._secret, details.nik):
            return Submission("nik_taken")  # erased, but once per lifetime
        try:
            applicant = register_applicant(
                session,
                nik=details.nik,
                kk_number=details.kk_number,
                full_name=details.full_name,
                birth_date=details.birth_date,
                policy_version=policy.version,
                email=details.email,
                email_verified_at=proven_at,
                phone=_phone_of(caller),
                kk_cap=policy.eligibility.kk_cap,
                now=now,
            )
        except AlreadyRegistered:
            return Submission("nik_taken")
        except KkCapReached:
            return Submission("kk_full")
        link_identity(
            session, caller.identity_id, applicant.id, LINK_REGISTRATION, now=now
        )
        attach_consents(session, caller.identity_id, applicant.id)
        set_step(session, applicant.id, STEP_EMAIL, STEP_DONE, now=proven_at)
        set_step(session, applicant.id, STEP_NIK, STEP_PENDING, now=now)
        enqueue_job(session, applicant.id, JOB_NIK, now=now)
        log.info("applicant %s registered, NIK check queued", applicant.id)
        return Submission("queued", applicant.id)

    def _correct(
        self, session: Session, applicant_id: int, details: Details, now: datetime
    ) -> Submission:
        steps = applicant_steps(session, applicant_id)
        nik = steps[STEP_NIK]
        if nik.status != STEP_FAILED or nik.failure_reason not in CORRECTABLE:
            return Submission("registered_already", applicant_id)
        if was_participant(session, self._secret, details.nik):
            return Submission("nik_taken", applicant_id)
        try:
            correct_applicant(
                session,
                applicant_id,
                nik=details.nik,
                kk_number=details.kk_number,
                full_name=details.full_name,
                birth_date=details.birth_date,
                kk_cap=self._policy().eligibility.kk_cap,
                now=now,
            )
        except AlreadyRegistered:
            return Submission("nik_taken", applicant_id)
        except KkCapReached:
            return Submission("kk_full", applicant_id)
        set_step(session, applicant_id, STEP_NIK, STEP_PENDING, now=now)
        enqueue_job(session, applicant_id, JOB_NIK, now=now)
        log.info("applicant %s corrected, NIK check queued again", applicant_id)
        return Submission("corrected", applicant_id)

    # --- standing ----------------------------------------------------------------

    def standing(self, caller: Caller) -> Standing | None:
        """The caller's registration as it stands; None when not linked."""
        if caller.applicant_id is None:
            return None
        return self.standing_of(caller.applicant_id)

    def standing_of(self, applicant_id: int) -> Standing:
        """One applicant's standing (for linked callers and notifications only)."""
        now = self._clock()
        with read_session(self._sessions) as session:
            jobs = jobs_of(session, applicant_id, JOB_NIK)
            return Standing(
                applicant=get_applicant(session, applicant_id),
                steps=applicant_steps(session, applicant_id),
                memberships=memberships_of(session, applicant_id),
                open_batches=open_batches(session, now),
                upcoming=upcoming_batch(session, now),
                nik_job=max(jobs, key=lambda job: job.id) if jobs else None,
                data_refusals=sum(job.result_code in DATA_REFUSALS for job in jobs),
                now=now,
            )

    # --- joining a batch ---------------------------------------------------------

    def join(
        self, caller: Caller, number: int | None = None, key: str | None = None
    ) -> JoinResult:
        """Join batch `number`, or the only open one; idempotent, and a repeated
        turn `key` gets the first one's outcome ("joined", not "already")."""
        found, outcome = replay(self._sessions, key, "join_batch", JoinResult)
        if found:
            return outcome
        if caller.applicant_id is None:
            return JoinResult("not_registered")
        standing = self.standing_of(caller.applicant_id)
        current = standing.current_membership
        if current is not None and current.announced_result == RESULT_SELECTED:
            revoked = current.card_revoked(self._clock())
            outcome = "revoked" if revoked else "selected"
            return JoinResult(outcome, self._batch(current.batch_number))
        if current is not None and current.announced_result == RESULT_PENDING:
            batch = self._batch(current.batch_number)
            if number is None or number == current.batch_number:
                return JoinResult("already_joined", batch)
            return JoinResult("waiting", batch)
        if (
            standing.applicant.email_verified_at is None
            or standing.step_status(STEP_NIK) != STEP_DONE
        ):
            return JoinResult("not_ready")
        opened = standing.open_batches
        wave = number if number is not None or len(opened) != 1 else opened[0].number
        reasons = self.ineligibility(standing.applicant.birth_date, wave)
        if reasons:
            return JoinResult("not_eligible", reasons=reasons)
        if number is None:
            if not opened:
                return JoinResult("none_open", alternative=standing.upcoming)
            if len(opened) > 1:
                return JoinResult("choose", choices=tuple(opened))
            number = opened[0].number
        applicant_id = caller.applicant_id
        return once(
            self._sessions,
            key,
            "join_batch",
            lambda session: self._join_number(session, applicant_id, number, standing),
            JoinResult,
            clock=self._clock,
        )

    def _batch(self, number: int) -> BatchInfo | None:
        with read_session(self._sessions) as session:
            return batch_by_number(session, number)

    def _join_number(
        self, session: Session, applicant_id: int, number: int, standing: Standing
    ) -> JoinResult:
        now = self._clock()
        batch = batch_by_number(session, number)
        if batch is None:
            return _refused("no_batch", None, standing)
        try:
            joined = join_batch(session, applicant_id, batch.id, now=now)
        except BatchFull:
            return _refused("full", batch, standing)
        except BatchClosed as closed:
            outcome = "not_open" if closed.not_yet_open else "closed"
            return _refused(outcome, batch, standing)
        except AlreadyInBatch as waiting:
            found = batch_by_number(session, waiting.batch_number)
            return JoinResult("waiting", found)
        except (NotEligible, BatchNotFound):
            return JoinResult("not_eligible")
        if joined.result != RESULT_PENDING:  # not selected there: a past batch
            return _refused("closed", batch, standing)
        set_step(session, applicant_id, STEP_BATCH, STEP_DONE, now=now)
        set_step(session, applicant_id, STEP_SELECTION, STEP_PENDING, now=now)
        fresh = joined.joined_at == now
        log.info("applicant %s in batch %s", applicant_id, number)
        batch = batch_by_number(session, number)
        return JoinResult("joined" if fresh else "already_joined", batch)

    # --- linking a Telegram account ----------------------------------------------

    def request_link_code(
        self, caller: Caller, nik: str, key: str | None = None
    ) -> CodeRequest:
        """A code for the registered e-mail of `nik`'s applicant (its mail
        queued), to link this identity; an empty request when there is nothing
        to link (the caller says the same either way, so a NIK reveals
        nothing). Once per turn `key`."""
        return once(
            self._sessions,
            key,
            "link_code",
            lambda session: self._link_code(session, caller, nik),
            CodeRequest,
            stored=CodeRequest.recorded,
            clock=self._clock,
        )

    def _link_code(self, session: Session, caller: Caller, nik: str) -> CodeRequest:
        now = self._clock()
        applicant = find_applicant(session, nik)
        if applicant is None or applicant.email_verified_at is None:
            return CodeRequest()
        window, limit = LINK_CODE_LIMIT
        sent = codes_sent_since(session, now - window, applicant_id=applicant.id)
        if sent >= limit:
            return CodeRequest()
        assert applicant.email is not None
        return issue_code(
            session,
            self._secret,
            applicant.email,
            "link",
            now,
            identity_id=caller.identity_id,
            applicant_id=applicant.id,
        )

    def confirm_link_code(
        self, caller: Caller, code: str, key: str | None = None
    ) -> CodeCheck:
        """Check a link code; on success the identity is linked to the applicant.
        Once per turn `key`."""
        return once(
            self._sessions,
            key,
            "link_confirm",
            lambda session: self._confirm_link(session, caller, code),
            CodeCheck,
            stored=_check_recorded,
            clock=self._clock,
        )

    def link_confirmed(self, key: str | None) -> CodeCheck | None:
        """What the link code check of turn `key` gave, when it ran already."""
        found, outcome = replay(self._sessions, key, "link_confirm", CodeCheck)
        return outcome if found else None

    def _confirm_link(self, session: Session, caller: Caller, code: str) -> CodeCheck:
        now = self._clock()
        applicant_id = session.execute(
            select(email_codes.c.applicant_id)
            .where(
                email_codes.c.identity_id == caller.identity_id,
                email_codes.c.applicant_id.is_not(None),
            )
            .order_by(email_codes.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if applicant_id is None:
            return CodeCheck("no_code")
        check = verify_email_code(
            session,
            self._secret,
            code,
            identity_id=caller.identity_id,
            applicant_id=int(applicant_id),
            now=now,
        )
        if check.ok:
            self._link_replacing(session, caller, int(applicant_id), now)
        return check

    @staticmethod
    def _link_replacing(
        session: Session, caller: Caller, applicant_id: int, now: datetime
    ) -> None:
        """Link the caller, replacing the applicant's older account on the same
        channel (a new Telegram account, proven by the e-mail code)."""
        for identity in identities_of(session, applicant_id):
            if identity.channel == caller.channel and identity.id != caller.identity_id:
                unlink_identity(session, identity.id)
        link_identity(
            session, caller.identity_id, applicant_id, LINK_EMAIL_CODE, now=now
        )


def _refused(outcome: str, batch: BatchInfo | None, standing: Standing) -> JoinResult:
    """A refusal, with the batch to join instead: another open one, else the
    next one to open."""
    refused = batch.number if batch else None
    for other in standing.open_batches:
        if other.number != refused:
            return JoinResult(outcome, batch, other, alternative_open=True)
    upcoming = standing.upcoming
    if upcoming is not None and upcoming.number != refused:
        return JoinResult(outcome, batch, upcoming)
    return JoinResult(outcome, batch)


def _phone_of(caller: Caller) -> str | None:
    """The registered phone: the SMS sender's number (simulated numbers such
    as "sim:andi" are no phone)."""
    if caller.channel != SMS:
        return None
    return caller.address if E164.fullmatch(caller.address) else None
