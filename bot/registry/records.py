"""Plain values the registry functions return (never ORM objects).

Personal data (NIK, KK number, name, birth date, email, phone, external ids, codes)
is left out of `repr`, so a record that ends up in a log line leaks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.registry.models import RESULT_PENDING, RESULT_SELECTED


@dataclass(frozen=True)
class ApplicantInfo:
    """One applicant."""

    id: int
    nik: str = field(repr=False)
    kk_number: str = field(repr=False)
    full_name: str = field(repr=False)
    birth_date: date = field(repr=False)
    email: str | None = field(repr=False)
    email_verified_at: datetime | None
    phone: str | None = field(repr=False)
    policy_version: str
    status: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> ApplicantInfo:
        """From a row of the `applicant` table."""
        return cls(
            id=row.id,
            nik=row.nik,
            kk_number=row.kk_number,
            full_name=row.full_name,
            birth_date=row.birth_date,
            email=row.email,
            email_verified_at=row.email_verified_at,
            phone=row.phone,
            policy_version=row.policy_version,
            status=row.status,
            created_at=row.created_at,
        )


@dataclass(frozen=True)
class IdentityInfo:
    """A Telegram user or phone number, and the applicant it is linked to."""

    id: int
    channel: str
    external_id: str = field(repr=False)
    applicant_id: int | None
    linked_at: datetime | None
    link_method: str | None

    @classmethod
    def from_row(cls, row: Any) -> IdentityInfo:
        """From a row of the `channel_identity` table."""
        return cls(
            id=row.id,
            channel=row.channel,
            external_id=row.external_id,
            applicant_id=row.applicant_id,
            linked_at=row.linked_at,
            link_method=row.link_method,
        )


@dataclass(frozen=True)
class ConsentInfo:
    """One consent given (and perhaps withdrawn)."""

    id: int
    identity_id: int | None
    applicant_id: int | None
    purpose: str
    text_version: str
    granted_at: datetime
    withdrawn_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> ConsentInfo:
        """From a row of the `consent_record` table."""
        return cls(
            id=row.id,
            identity_id=row.identity_id,
            applicant_id=row.applicant_id,
            purpose=row.purpose,
            text_version=row.text_version,
            granted_at=row.granted_at,
            withdrawn_at=row.withdrawn_at,
        )


@dataclass(frozen=True)
class StepInfo:
    """Where one registration step stands (`not_started` has no timestamps)."""

    step: str
    status: str
    failure_reason: str | None = None
    failure_detail: str | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> StepInfo:
        """From a row of the `registration_step` table."""
        return cls(
            step=row.step,
            status=row.status,
            failure_reason=row.failure_reason,
            failure_detail=row.failure_detail,
            started_at=row.started_at,
            updated_at=row.updated_at,
            completed_at=row.completed_at,
        )


@dataclass(frozen=True)
class BatchInfo:
    """A batch (gelombang) and how full it is."""

    id: int
    number: int
    opens_at: datetime
    closes_at: datetime
    quota: int
    joined_count: int

    @property
    def places_left(self) -> int:
        """Places not yet taken."""
        return max(self.quota - self.joined_count, 0)

    def is_open(self, now: datetime) -> bool:
        """Whether `now` (naive UTC) lies in the batch's window."""
        return self.opens_at <= now < self.closes_at

    @classmethod
    def from_row(cls, row: Any) -> BatchInfo:
        """From a row of the `batch` table."""
        return cls(
            id=row.id,
            number=row.number,
            opens_at=row.opens_at,
            closes_at=row.closes_at,
            quota=row.quota,
            joined_count=row.joined_count,
        )


@dataclass(frozen=True)
class MembershipInfo:
    """An applicant's place in a batch and the selection result."""

    id: int
    applicant_id: int
    batch_id: int
    batch_number: int
    joined_at: datetime
    result: str
    decided_at: datetime | None
    published_at: datetime | None = None
    """When the result became known: the batch's publication (None: not yet);
    for a result recorded by hand outside a batch run, when it was recorded."""
    excluded_reason: str | None = None
    purchase_deadline: datetime | None = None

    @property
    def announced_result(self) -> str:
        """The result as the person may know it: `pending` until published."""
        return self.result if self.published_at is not None else RESULT_PENDING

    def card_revoked(self, now: datetime) -> bool:
        """Selected, and the purchase deadline has passed (`now` naive UTC)."""
        return (
            self.announced_result == RESULT_SELECTED
            and self.purchase_deadline is not None
            and now >= self.purchase_deadline
        )


@dataclass(frozen=True)
class JobInfo:
    """A verification job; `attempts` counts claims, the current one included."""

    id: int
    applicant_id: int
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    result_code: str | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> JobInfo:
        """From a row of the `verification_job` table."""
        return cls(
            id=row.id,
            applicant_id=row.applicant_id,
            kind=row.kind,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            lease_owner=row.lease_owner,
            lease_until=row.lease_until,
            result_code=row.result_code,
            last_error=row.last_error,
            created_at=row.created_at,
            finished_at=row.finished_at,
        )


@dataclass(frozen=True)
class IssuedCode:
    """A new e-mail code: send `code` to the address, then forget it."""

    id: int
    code: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True)
class CodeCheck:
    """The outcome of entering an e-mail code.

    `outcome` is one of `ok`, `wrong`, `expired`, `too_many_attempts`, `used`,
    `no_code`; `email` is the address the code was sent to (when there is a code).
    """

    outcome: str
    email: str | None = field(default=None, repr=False)
    attempts_left: int = 0

    @property
    def ok(self) -> bool:
        """Whether the code was right (the address is now proven)."""
        return self.outcome == "ok"
