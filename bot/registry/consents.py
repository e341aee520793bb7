"""Consent to process personal data (UU PDP), asked before any is collected.

A consent belongs to a channel identity (given in a chat before the person is an
applicant) and/or to an applicant (`attach_consents` after registration).
Declining stores nothing: only consent given is recorded, with the version of the
text shown. Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from bot.direct_sql import DirectStatement
from bot.registry._sql import SubjectKind, now_or, subject, subject_clauses
from bot.registry.models import ConsentRecord
from bot.registry.records import ConsentInfo

consents = ConsentRecord.__table__
PURPOSE_MAX = 32


NO_SUBJECT = "a consent needs an identity or an applicant"


def active_consent(
    session: Session,
    purpose: str,
    *,
    identity_id: int | None = None,
    applicant_id: int | None = None,
) -> ConsentInfo | None:
    """The newest consent for `purpose` not withdrawn, by this identity or
    applicant (either matches), if any."""
    kind, params = subject(identity_id, applicant_id, NO_SUBJECT)
    row = (
        _active(kind).execute(session, {**params, "of_purpose": purpose}).one_or_none()
    )
    return None if row is None else ConsentInfo.from_row(row)


def _in_force(kind: SubjectKind) -> tuple[Any, ...]:
    """The consents to one purpose of a subject of this kind, not withdrawn."""
    return (
        or_(*subject_clauses(consents, kind)),
        consents.c.purpose == bindparam("of_purpose"),
        consents.c.withdrawn_at.is_(None),
    )


@cache
def _active(kind: SubjectKind) -> DirectStatement:
    """`active_consent`'s query, built once for each kind of subject (asked on
    most turns of a registration)."""
    return DirectStatement(
        select(consents).where(*_in_force(kind)).order_by(consents.c.id.desc()).limit(1)
    )


@cache
def _withdraw(kind: SubjectKind) -> Any:
    """`withdraw_consent`'s update, built once for each kind of subject."""
    return (
        update(consents)
        .where(*_in_force(kind))
        .values(withdrawn_at=bindparam("withdrawn"))
    )


INSERT_CONSENT = insert(consents)
CONSENT = select(consents).where(consents.c.id == bindparam("consent_id"))
ATTACH = (
    update(consents)
    .where(
        consents.c.identity_id == bindparam("of_identity"),
        consents.c.applicant_id.is_(None),
    )
    .values(applicant_id=bindparam("to_applicant"))
)


def grant_consent(
    session: Session,
    purpose: str,
    text_version: str,
    *,
    identity_id: int | None = None,
    applicant_id: int | None = None,
    now: datetime | None = None,
) -> ConsentInfo:
    """Record consent to `purpose` under the text `text_version`.

    Idempotent: an active consent of the same subject, purpose and text version is
    returned as it is.
    """
    if not purpose or len(purpose) > PURPOSE_MAX or not text_version:
        raise ValueError("purpose and text version are required")
    current = active_consent(
        session, purpose, identity_id=identity_id, applicant_id=applicant_id
    )
    if current is not None and current.text_version == text_version:
        return current
    result = session.execute(
        INSERT_CONSENT,
        {
            "identity_id": identity_id,
            "applicant_id": applicant_id,
            "purpose": purpose,
            "text_version": text_version,
            "granted_at": now_or(now),
        },
    )
    row = session.execute(CONSENT, {"consent_id": result.inserted_primary_key[0]}).one()
    return ConsentInfo.from_row(row)


def withdraw_consent(
    session: Session,
    purpose: str,
    *,
    identity_id: int | None = None,
    applicant_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Withdraw every active consent to `purpose` of this subject; how many."""
    kind, params = subject(identity_id, applicant_id, NO_SUBJECT)
    result = session.execute(
        _withdraw(kind),
        {**params, "of_purpose": purpose, "withdrawn": now_or(now)},
    )
    return int(result.rowcount)


def attach_consents(session: Session, identity_id: int, applicant_id: int) -> int:
    """Give the applicant the consents its identity gave before registering."""
    result = session.execute(
        ATTACH, {"of_identity": identity_id, "to_applicant": applicant_id}
    )
    return int(result.rowcount)
