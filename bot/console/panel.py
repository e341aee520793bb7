"""The applicant's registration as the agent sees it beside the conversation.

Each step with its state, failure reason and last change, the batches joined,
the linked channels and the single next action the bot would give. NIK, KK
number, phone, e-mail and birth date are masked (`bot.policy.validation`
helpers); the clear value comes only from `reveal_value`, which the console
calls behind an audited POST. A ticket's panel is the applicant fixed when the
ticket was opened (`Ticket.applicant_id`), never whoever owns the number now:
a number can pass to another person. Functions take a Session and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.console import labels
from bot.policy.validation import mask_email, mask_nik, mask_phone
from bot.registration.desk import DATA_REFUSALS, Standing
from bot.registration.status import next_action
from bot.registry import (
    ApplicantInfo,
    ApplicantNotFound,
    MembershipInfo,
    get_applicant,
    identities_of,
    jobs_of,
    memberships_of,
    open_batches,
    upcoming_batch,
)
from bot.registry.models import JOB_NIK, RESULT_NOT_SELECTED, RESULT_SELECTED
from bot.registry.steps import applicant_steps
from bot.selection.announcements import messages_of
from bot.selection.notices import notices_of

REVEALABLE = ("nik", "kk_number", "birth_date", "phone", "email")
FIELD_LABELS = {
    "nik": "NIK",
    "kk_number": "Nomor KK",
    "birth_date": "Tanggal lahir",
    "phone": "Nomor HP",
    "email": "Email",
}


@dataclass(frozen=True)
class MaskedField:
    """A personal field shown masked, revealable on request."""

    name: str
    label: str
    masked: str


@dataclass(frozen=True)
class StepRow:
    """One registration step as shown."""

    step: str
    label: str
    status: str
    status_label: str
    reason: str | None
    reason_label: str | None
    detail: str | None
    updated: str


@dataclass(frozen=True)
class Panel:
    """The registration panel of one applicant."""

    applicant_id: int
    full_name: str
    status_label: str
    policy_version: str
    registered: str
    email_verified: bool
    fields: tuple[MaskedField, ...]
    steps: tuple[StepRow, ...]
    batches: tuple[str, ...]
    announcements: tuple[str, ...]
    reminders: tuple[str, ...]
    channels: tuple[str, ...]
    next_action: str
    stuck: bool


def _masked(applicant: ApplicantInfo, name: str) -> str | None:
    if name == "nik":
        return mask_nik(applicant.nik)
    if name == "kk_number":
        return mask_nik(applicant.kk_number)
    if name == "birth_date":
        return f"**/**/{applicant.birth_date.year}"
    if name == "phone":
        return mask_phone(applicant.phone) if applicant.phone else None
    if name == "email":
        return mask_email(applicant.email) if applicant.email else None
    raise ValueError(f"unknown field {name!r}")


def _clear(applicant: ApplicantInfo, name: str) -> str | None:
    if name == "birth_date":
        return applicant.birth_date.strftime("%d/%m/%Y")
    value = getattr(applicant, name)
    return None if value is None else str(value)


def _membership_line(item: MembershipInfo, now: datetime) -> str:
    """``Gelombang 5: lolos, beli pelatihan sebelum 05/01 10.00 WIB``."""
    result = item.announced_result
    line = f"Gelombang {item.batch_number}: " + labels.label(
        labels.MEMBERSHIP_RESULTS, result
    )
    if result == RESULT_SELECTED and item.purchase_deadline is not None:
        deadline = labels.wib(item.purchase_deadline)
        if item.card_revoked(now):
            return f"{line}, dicabut (batas beli pelatihan {deadline} WIB lewat)"
        return f"{line}, beli pelatihan sebelum {deadline} WIB"
    if result == RESULT_NOT_SELECTED and item.excluded_reason:
        reason = labels.label(labels.EXCLUDED_REASONS, item.excluded_reason)
        return f"{line} ({reason})"
    return line


def registration_panel(
    session: Session, applicant_id: int, now: datetime
) -> Panel | None:
    """The panel of an applicant (None if the applicant no longer exists)."""
    try:
        applicant = get_applicant(session, applicant_id)
    except ApplicantNotFound:
        return None
    steps = applicant_steps(session, applicant_id)
    memberships = memberships_of(session, applicant_id)
    jobs = jobs_of(session, applicant_id, JOB_NIK)
    standing = Standing(
        applicant=applicant,
        steps=steps,
        memberships=memberships,
        open_batches=open_batches(session, now),
        upcoming=upcoming_batch(session, now),
        nik_job=max(jobs, key=lambda job: job.id) if jobs else None,
        data_refusals=sum(job.result_code in DATA_REFUSALS for job in jobs),
        now=now,
    )
    fields = tuple(
        MaskedField(name, FIELD_LABELS[name], masked)
        for name in REVEALABLE
        if (masked := _masked(applicant, name)) is not None
    )
    rows = tuple(
        StepRow(
            step=step.step,
            label=labels.label(labels.STEPS, step.step),
            status=step.status,
            status_label=(
                labels.PENDING_STEPS.get(step.step, labels.STEP_STATUSES["pending"])
                if step.status == "pending"
                else labels.label(labels.STEP_STATUSES, step.status)
            ),
            reason=step.failure_reason,
            reason_label=(
                labels.label(labels.FAILURE_REASONS, step.failure_reason)
                if step.failure_reason
                else None
            ),
            detail=step.failure_detail,
            updated=labels.wib(step.updated_at),
        )
        for step in steps.values()
    )
    batches = tuple(
        _membership_line(item, now)
        for item in sorted(memberships, key=lambda item: item.joined_at)
    )
    announcements = tuple(
        f"{labels.label(labels.CHANNELS, message.channel)}: "
        f"{labels.label(labels.MESSAGE_STATUSES, message.status)}"
        for message in messages_of(session, applicant_id)
    )
    reminders = tuple(
        f"{notice.days_before} hari sebelum batas ({labels.wib(notice.due_at)} WIB): "
        f"{labels.label(labels.NOTICE_STATUSES, notice.status)}"
        for notice in notices_of(session, applicant_id)
    )
    channels = tuple(
        f"{labels.label(labels.CHANNELS, identity.channel)} "
        f"(sejak {labels.wib(identity.linked_at)})"
        for identity in identities_of(session, applicant_id)
    )
    return Panel(
        applicant_id=applicant.id,
        full_name=applicant.full_name,
        status_label=labels.label(labels.APPLICANT_STATUSES, applicant.status),
        policy_version=applicant.policy_version,
        registered=labels.wib(applicant.created_at),
        email_verified=applicant.email_verified_at is not None,
        fields=fields,
        steps=rows,
        batches=batches,
        announcements=announcements,
        reminders=reminders,
        channels=channels,
        next_action=next_action(standing),
        stuck=standing.stuck,
    )


def reveal_value(session: Session, applicant_id: int, field: str) -> str | None:
    """The clear value of one personal field (None when it is not recorded).
    The caller checks access and writes the audit event."""
    if field not in REVEALABLE:
        raise ValueError(f"unknown field {field!r}")
    applicant = get_applicant(session, applicant_id)
    return _clear(applicant, field)
