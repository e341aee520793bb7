"""Tables of the registry: applicants, their channels, consent, steps, batches, jobs.

The rules that must hold under concurrent requests live in the database, not only
in the code that writes it:
- one applicant per NIK, ever (`uq_applicant_nik`); a revoked applicant keeps the row;
- a batch's run (`batch_run`, once a supervisor acts on it) moves one way only,
  open -> closed -> selecting -> selected -> published, each by a conditional
  `UPDATE ... WHERE state = <previous>` (`bot.selection.lifecycle`), and never
  selects more than its places (`ck_batch_run_selected_le_places`);
- a batch never holds more than its quota (`ck_batch_joined_le_quota`, and every
  join is a conditional `UPDATE`); one membership per applicant and batch, and at
  most one membership still waiting for selection per applicant (partial unique
  index `uq_batch_membership_one_pending`);
- one active verification job per applicant and kind (partial unique index), so a
  double click never queues two NIK checks;
- a channel identity (Telegram user, phone number) belongs to at most one
  applicant, and an applicant has at most one identity per channel.

Timestamps are naive UTC, as in the gateway (`bot.db.utcnow`). NIK, KK number,
name, email and phone are personal data: never log them, mask them for display.
E-mail codes are stored only as an HMAC, never in clear.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)

from bot.db import Base, utcnow

# --- Value sets (kept in CHECK constraints too) -----------------------------------

APPLICANT_REGISTERED = "registered"
APPLICANT_PARTICIPANT = "participant"
APPLICANT_REVOKED = "revoked"
APPLICANT_STATUSES = (APPLICANT_REGISTERED, APPLICANT_PARTICIPANT, APPLICANT_REVOKED)

CHANNEL_TELEGRAM = "telegram"
CHANNEL_SMS = "sms"
IDENTITY_CHANNELS = (CHANNEL_TELEGRAM, CHANNEL_SMS)

LINK_REGISTRATION = "registration"  # registered in this very chat
LINK_PHONE = "phone"  # the SMS sender is the registered phone
LINK_EMAIL_CODE = "email_code"  # proved by a code sent to the registered email
LINK_SMS_CODE = "sms_code"  # proved by a code sent to the registered phone
LINK_METHODS = (LINK_REGISTRATION, LINK_PHONE, LINK_EMAIL_CODE, LINK_SMS_CODE)

STEP_EMAIL = "email"
STEP_NIK = "nik"
STEP_PHOTO = "photo"
STEP_TEST = "test"
STEP_BATCH = "batch"
STEP_SELECTION = "selection"
STEPS = (STEP_EMAIL, STEP_NIK, STEP_PHOTO, STEP_TEST, STEP_BATCH, STEP_SELECTION)

STEP_NOT_STARTED = "not_started"
STEP_PENDING = "pending"
STEP_DONE = "done"
STEP_FAILED = "failed"
STEP_STATUSES = (STEP_NOT_STARTED, STEP_PENDING, STEP_DONE, STEP_FAILED)

RESULT_PENDING = "pending"
RESULT_SELECTED = "selected"
RESULT_NOT_SELECTED = "not_selected"
MEMBERSHIP_RESULTS = (RESULT_PENDING, RESULT_SELECTED, RESULT_NOT_SELECTED)

RUN_OPEN = "open"
RUN_CLOSED = "closed"
RUN_SELECTING = "selecting"
RUN_SELECTED = "selected"
RUN_PUBLISHED = "published"
RUN_STATES = (RUN_OPEN, RUN_CLOSED, RUN_SELECTING, RUN_SELECTED, RUN_PUBLISHED)
DRAWN_STATES = (RUN_SELECTED, RUN_PUBLISHED)
SEED_MAX = 64

JOB_NIK = "nik"
JOB_EMAIL = "email"
JOB_KINDS = (JOB_NIK, JOB_EMAIL)

JOB_QUEUED = "queued"
JOB_RUNNING = "running"
JOB_DONE = "done"
JOB_FAILED = "failed"
JOB_STATUSES = (JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED)

NIK_LENGTH = 16
PHONE_MAX = 16  # E.164: "+" and at most 15 digits
EMAIL_MAX = 254


def _in(column: str, values: tuple[str, ...]) -> str:
    """SQL for `column IN ('a', 'b')` from constant values (never user input)."""
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


# Where-clauses of the partial unique indexes (SQLite and PostgreSQL share them).
ONE_PENDING_MEMBERSHIP = f"result = '{RESULT_PENDING}'"
ONE_ACTIVE_JOB = _in("status", (JOB_QUEUED, JOB_RUNNING))


class Applicant(Base):
    """One person, once in a lifetime: the row is never re-created for a NIK."""

    __tablename__ = "applicant"
    __table_args__ = (
        UniqueConstraint("nik", name="uq_applicant_nik"),
        CheckConstraint(f"length(nik) = {NIK_LENGTH}", name="ck_applicant_nik"),
        CheckConstraint(
            f"length(kk_number) = {NIK_LENGTH}", name="ck_applicant_kk_number"
        ),
        CheckConstraint("length(full_name) > 0", name="ck_applicant_full_name"),
        CheckConstraint(
            "phone IS NULL OR phone LIKE '+%'", name="ck_applicant_phone_e164"
        ),
        CheckConstraint(
            "email_verified_at IS NULL OR email IS NOT NULL",
            name="ck_applicant_email_verified",
        ),
        CheckConstraint(_in("status", APPLICANT_STATUSES), name="ck_applicant_status"),
        Index("ix_applicant_kk_number", "kk_number"),
        Index("ix_applicant_phone", "phone"),
    )

    id = Column(Integer, primary_key=True)
    nik = Column(String(NIK_LENGTH), nullable=False)
    kk_number = Column(String(NIK_LENGTH), nullable=False)
    full_name = Column(String(128), nullable=False)
    birth_date = Column(Date, nullable=False)
    email = Column(String(EMAIL_MAX))
    email_verified_at = Column(DateTime)
    phone = Column(String(PHONE_MAX))
    policy_version = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False, default=APPLICANT_REGISTERED)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class ChannelIdentity(Base):
    """A Telegram user or a phone number; linked to an applicant once proven."""

    __tablename__ = "channel_identity"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_channel_identity_external"),
        # NULLs are distinct: many unlinked identities, one linked per channel.
        UniqueConstraint(
            "applicant_id", "channel", name="uq_channel_identity_applicant"
        ),
        CheckConstraint(
            _in("channel", IDENTITY_CHANNELS), name="ck_channel_identity_channel"
        ),
        CheckConstraint(
            "length(external_id) > 0", name="ck_channel_identity_external_id"
        ),
        CheckConstraint(
            "(applicant_id IS NULL AND linked_at IS NULL AND link_method IS NULL)"
            " OR (applicant_id IS NOT NULL AND linked_at IS NOT NULL"
            f" AND {_in('link_method', LINK_METHODS)})",
            name="ck_channel_identity_link",
        ),
    )

    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    external_id = Column(String(128), nullable=False)
    applicant_id = Column(Integer, ForeignKey("applicant.id"))
    linked_at = Column(DateTime)
    link_method = Column(String(16))
    created_at = Column(DateTime, nullable=False, default=utcnow)


class ConsentRecord(Base):
    """Consent given to process personal data; declining stores nothing."""

    __tablename__ = "consent_record"
    __table_args__ = (
        CheckConstraint(
            "identity_id IS NOT NULL OR applicant_id IS NOT NULL",
            name="ck_consent_record_subject",
        ),
        CheckConstraint(
            "withdrawn_at IS NULL OR withdrawn_at >= granted_at",
            name="ck_consent_record_withdrawn",
        ),
        Index("ix_consent_record_identity", "identity_id", "purpose"),
        Index("ix_consent_record_applicant", "applicant_id", "purpose"),
    )

    id = Column(Integer, primary_key=True)
    identity_id = Column(Integer, ForeignKey("channel_identity.id", ondelete="CASCADE"))
    applicant_id = Column(Integer, ForeignKey("applicant.id", ondelete="CASCADE"))
    purpose = Column(String(32), nullable=False)
    text_version = Column(String(32), nullable=False)
    granted_at = Column(DateTime, nullable=False, default=utcnow)
    withdrawn_at = Column(DateTime)


class RegistrationStep(Base):
    """Where one step of one applicant stands; no row means `not_started`."""

    __tablename__ = "registration_step"
    __table_args__ = (
        UniqueConstraint("applicant_id", "step", name="uq_registration_step"),
        CheckConstraint(_in("step", STEPS), name="ck_registration_step_step"),
        CheckConstraint(
            _in("status", STEP_STATUSES), name="ck_registration_step_status"
        ),
        CheckConstraint(
            f"(status = '{STEP_FAILED}' AND failure_reason IS NOT NULL)"
            f" OR (status <> '{STEP_FAILED}' AND failure_reason IS NULL"
            " AND failure_detail IS NULL)",
            name="ck_registration_step_failure",
        ),
        CheckConstraint(
            f"(status = '{STEP_DONE}' AND completed_at IS NOT NULL)"
            f" OR (status <> '{STEP_DONE}' AND completed_at IS NULL)",
            name="ck_registration_step_completed",
        ),
    )

    id = Column(Integer, primary_key=True)
    applicant_id = Column(
        Integer, ForeignKey("applicant.id", ondelete="CASCADE"), nullable=False
    )
    step = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False)
    failure_reason = Column(String(32))
    failure_detail = Column(Text)
    started_at = Column(DateTime)
    updated_at = Column(DateTime, nullable=False, default=utcnow)
    completed_at = Column(DateTime)


class Batch(Base):
    """A wave (gelombang): open between two moments, for at most `quota` people."""

    __tablename__ = "batch"
    __table_args__ = (
        UniqueConstraint("number", name="uq_batch_number"),
        CheckConstraint("number > 0", name="ck_batch_number_positive"),
        CheckConstraint("quota > 0", name="ck_batch_quota_positive"),
        CheckConstraint("joined_count >= 0", name="ck_batch_joined_nonnegative"),
        CheckConstraint("joined_count <= quota", name="ck_batch_joined_le_quota"),
        CheckConstraint("closes_at > opens_at", name="ck_batch_window"),
    )

    id = Column(Integer, primary_key=True)
    number = Column(Integer, nullable=False)
    opens_at = Column(DateTime, nullable=False)
    closes_at = Column(DateTime, nullable=False)
    quota = Column(Integer, nullable=False)
    joined_count = Column(Integer, nullable=False, default=0)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class BatchMembership(Base):
    """An applicant in a batch, waiting for selection or with its result."""

    __tablename__ = "batch_membership"
    __table_args__ = (
        UniqueConstraint("applicant_id", "batch_id", name="uq_batch_membership"),
        CheckConstraint(
            _in("result", MEMBERSHIP_RESULTS), name="ck_batch_membership_result"
        ),
        CheckConstraint(
            f"(result = '{RESULT_PENDING}' AND decided_at IS NULL)"
            f" OR (result <> '{RESULT_PENDING}' AND decided_at IS NOT NULL)",
            name="ck_batch_membership_decided",
        ),
        Index(
            "uq_batch_membership_one_pending",
            "applicant_id",
            unique=True,
            sqlite_where=text(ONE_PENDING_MEMBERSHIP),
            postgresql_where=text(ONE_PENDING_MEMBERSHIP),
        ),
        Index("ix_batch_membership_batch", "batch_id", "result"),
    )

    id = Column(Integer, primary_key=True)
    applicant_id = Column(
        Integer, ForeignKey("applicant.id", ondelete="CASCADE"), nullable=False
    )
    batch_id = Column(
        Integer, ForeignKey("batch.id", ondelete="CASCADE"), nullable=False
    )
    joined_at = Column(DateTime, nullable=False, default=utcnow)
    result = Column(String(16), nullable=False, default=RESULT_PENDING)
    decided_at = Column(DateTime)
    # Written by the selection (`bot.selection`); added by migration 0610.
    excluded_reason = Column(String(32))  # why the re-check left it out
    purchase_deadline = Column(DateTime)  # selected: buy the first training by


class BatchRun(Base):
    """Where a batch stands after opening: closed, drawn, published."""

    __tablename__ = "batch_run"
    __table_args__ = (
        CheckConstraint(_in("state", RUN_STATES), name="ck_batch_run_state"),
        CheckConstraint("places > 0", name="ck_batch_run_places"),
        CheckConstraint(
            f"state = '{RUN_OPEN}' OR closed_at IS NOT NULL",
            name="ck_batch_run_closed",
        ),
        CheckConstraint(
            f"state IN ('{RUN_OPEN}', '{RUN_CLOSED}')"
            " OR (seed IS NOT NULL AND selection_started_at IS NOT NULL)",
            name="ck_batch_run_seed",
        ),
        CheckConstraint(
            f"{_in('state', DRAWN_STATES)} = (selected_at IS NOT NULL"
            " AND selected_count IS NOT NULL AND eligible_count IS NOT NULL)",
            name="ck_batch_run_drawn",
        ),
        CheckConstraint(
            "selected_count IS NULL OR selected_count <= places",
            name="ck_batch_run_selected_le_places",
        ),
        CheckConstraint(
            f"(state = '{RUN_PUBLISHED}') = (published_at IS NOT NULL)",
            name="ck_batch_run_published",
        ),
    )

    batch_id = Column(
        Integer, ForeignKey("batch.id", ondelete="CASCADE"), primary_key=True
    )
    places = Column(Integer, nullable=False)
    state = Column(String(16), nullable=False, default=RUN_OPEN)
    closed_at = Column(DateTime)
    seed = Column(String(SEED_MAX))
    selection_started_at = Column(DateTime)
    selected_at = Column(DateTime)
    eligible_count = Column(Integer)
    selected_count = Column(Integer)
    published_at = Column(DateTime)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    announce_paused_at = Column(DateTime)
    """When a supervisor paused the announcement's sending (NULL: it runs)."""


class KkCount(Base):
    """How many applicants registered with one family card (KK) number."""

    __tablename__ = "kk_count"
    __table_args__ = (
        CheckConstraint("registered_count >= 0", name="ck_kk_count_nonnegative"),
        CheckConstraint(f"length(kk_number) = {NIK_LENGTH}", name="ck_kk_count_kk"),
    )

    kk_number = Column(String(NIK_LENGTH), primary_key=True)
    registered_count = Column(Integer, nullable=False, default=0)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class VerificationJob(Base):
    """A check to run outside the conversation (NIK at Dukcapil, e-mail), leased."""

    __tablename__ = "verification_job"
    __table_args__ = (
        CheckConstraint(_in("kind", JOB_KINDS), name="ck_verification_job_kind"),
        CheckConstraint(_in("status", JOB_STATUSES), name="ck_verification_job_status"),
        CheckConstraint("attempts >= 0", name="ck_verification_job_attempts"),
        CheckConstraint(
            f"status <> '{JOB_RUNNING}'"
            " OR (lease_owner IS NOT NULL AND lease_until IS NOT NULL)",
            name="ck_verification_job_lease",
        ),
        Index(
            "uq_verification_job_active",
            "applicant_id",
            "kind",
            unique=True,
            sqlite_where=text(ONE_ACTIVE_JOB),
            postgresql_where=text(ONE_ACTIVE_JOB),
        ),
        Index("ix_verification_job_due", "status", "next_attempt_at"),
    )

    id = Column(Integer, primary_key=True)
    applicant_id = Column(
        Integer, ForeignKey("applicant.id", ondelete="CASCADE"), nullable=False
    )
    kind = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False, default=JOB_QUEUED)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime, nullable=False, default=utcnow)
    lease_until = Column(DateTime)
    lease_owner = Column(String(64))
    result_code = Column(String(32))
    last_error = Column(Text)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    finished_at = Column(DateTime)


class EmailCode(Base):
    """A one-time code sent to an e-mail address; only its HMAC is stored."""

    __tablename__ = "email_code"
    __table_args__ = (
        CheckConstraint(
            "identity_id IS NOT NULL OR applicant_id IS NOT NULL",
            name="ck_email_code_owner",
        ),
        CheckConstraint("attempts >= 0", name="ck_email_code_attempts"),
        CheckConstraint("expires_at > created_at", name="ck_email_code_expiry"),
        Index("ix_email_code_identity", "identity_id", "id"),
        Index("ix_email_code_applicant", "applicant_id", "id"),
    )

    id = Column(Integer, primary_key=True)
    identity_id = Column(Integer, ForeignKey("channel_identity.id", ondelete="CASCADE"))
    applicant_id = Column(Integer, ForeignKey("applicant.id", ondelete="CASCADE"))
    email = Column(String(EMAIL_MAX), nullable=False)
    code_hash = Column(String(64), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
    attempts = Column(Integer, nullable=False, default=0)
    used_at = Column(DateTime)
