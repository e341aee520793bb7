"""Applicants (one per NIK, ever) and the per-family-card (KK) counts.

Every function takes a `Session` and leaves the transaction to the caller: nothing
here commits. A typed refusal (`AlreadyRegistered`, `KkCapReached`) is raised only
after the function has undone its own writes, so the caller may still commit the
rest of its work. Uniqueness is decided by the database (`uq_applicant_nik`,
`INSERT ... ON CONFLICT DO NOTHING`), so simultaneous registrations of one NIK give
one applicant and `AlreadyRegistered` for all the others.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from bot.direct_sql import DirectStatement
from bot.insert_ignoring import insert_ignoring_conflict
from bot.policy.validation import normalize_phone, validate_email
from bot.registry._sql import now_or
from bot.registry.errors import AlreadyRegistered, ApplicantNotFound, KkCapReached
from bot.registry.models import (
    APPLICANT_REGISTERED,
    APPLICANT_STATUSES,
    Applicant,
    KkCount,
)
from bot.registry.records import ApplicantInfo

_SEPARATORS = re.compile(r"[\s.\-]+")
_SIXTEEN_DIGITS = re.compile(r"\d{16}")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
NAME_MAX = 128

applicants = Applicant.__table__
other = applicants.alias("other_applicant")
kk_counts = KkCount.__table__
# Built once (read on most turns of a registered person): building a statement
# cost more than running it.
APPLICANT = DirectStatement(
    select(applicants).where(applicants.c.id == bindparam("applicant_id"))
)
ID_FOR_NIK = DirectStatement(
    select(applicants.c.id).where(applicants.c.nik == bindparam("nik"))
)
KK_COUNT = DirectStatement(
    select(kk_counts.c.registered_count).where(kk_counts.c.kk_number == bindparam("kk"))
)
_COUNT_ONE_MORE = (
    update(kk_counts)
    .where(kk_counts.c.kk_number == bindparam("kk"))
    .values(
        registered_count=kk_counts.c.registered_count + 1,
        updated_at=bindparam("now"),
    )
)
COUNT_ONE_MORE = {
    False: DirectStatement(_COUNT_ONE_MORE),
    True: DirectStatement(
        _COUNT_ONE_MORE.where(kk_counts.c.registered_count < bindparam("cap"))
    ),
}
"""One more applicant on a KK: without a cap, and below a cap."""


def _sixteen_digits(value: str, what: str) -> str:
    digits = _SEPARATORS.sub("", value)
    if not _SIXTEEN_DIGITS.fullmatch(digits):
        raise ValueError(f"{what} must be 16 digits")
    return digits


def _phone(value: str | None) -> str | None:
    if value is None:
        return None
    e164 = normalize_phone(value)
    if e164 is not None:
        return e164
    compact = re.sub(r"[\s\-.()]+", "", value)
    if not _E164.fullmatch(compact):
        raise ValueError("phone must be an E.164 number")
    return compact


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    check = validate_email(value)
    if not check.valid or check.normalized is None:
        raise ValueError("email is not a valid address")
    return check.normalized


def register_applicant(
    session: Session,
    *,
    nik: str,
    kk_number: str,
    full_name: str,
    birth_date: date,
    policy_version: str,
    email: str | None = None,
    email_verified_at: datetime | None = None,
    phone: str | None = None,
    kk_cap: int | None = None,
    now: datetime | None = None,
) -> ApplicantInfo:
    """Create the applicant for a NIK and count it against its family card (KK).

    NIK and KK are stored as 16 digits (separators removed), the email lowered,
    the phone in E.164. `kk_cap` (the policy's `kk_cap`; None: no cap) limits how
    many applicants one KK may have. Raises `AlreadyRegistered` when the NIK has
    an applicant (also when another transaction inserted it a moment earlier),
    `KkCapReached` when the KK is full, `ValueError` for malformed data.
    The caller commits.
    """
    moment = now_or(now)
    name = full_name.strip()
    if not name or len(name) > NAME_MAX:
        raise ValueError(f"full name must be 1 to {NAME_MAX} characters")
    nik_digits = _sixteen_digits(nik, "NIK")
    kk_digits = _sixteen_digits(kk_number, "KK number")
    values: dict[str, Any] = {
        "nik": nik_digits,
        "kk_number": kk_digits,
        "full_name": name,
        "birth_date": birth_date,
        "email": _email(email),
        "email_verified_at": email_verified_at and now_or(email_verified_at),
        "phone": _phone(phone),
        "policy_version": policy_version,
        "status": APPLICANT_REGISTERED,
        "created_at": moment,
        "updated_at": moment,
    }
    if kk_cap is not None and kk_cap < 1:
        raise ValueError("kk_cap must be at least 1 (None means no cap)")
    if values["email_verified_at"] is not None and values["email"] is None:
        raise ValueError("email_verified_at needs an email")
    existing = _id_for_nik(session, nik_digits)
    if existing is not None:
        raise AlreadyRegistered(existing)
    if not insert_ignoring_conflict(session, applicants, values, ["nik"]):
        raise AlreadyRegistered(_id_for_nik(session, nik_digits) or 0)
    applicant_id = _id_for_nik(session, nik_digits)
    assert applicant_id is not None
    try:
        reserve_kk_slot(session, kk_digits, kk_cap, now=moment)
    except KkCapReached:
        session.execute(delete(applicants).where(applicants.c.id == applicant_id))
        raise
    return get_applicant(session, applicant_id)


def _id_for_nik(session: Session, nik: str) -> int | None:
    found = ID_FOR_NIK.execute(session, {"nik": nik}).scalar_one_or_none()
    return None if found is None else int(found)


def get_applicant(session: Session, applicant_id: int) -> ApplicantInfo:
    """The applicant with this id; `ApplicantNotFound` if there is none."""
    row = APPLICANT.execute(session, {"applicant_id": applicant_id}).one_or_none()
    if row is None:
        raise ApplicantNotFound(f"no applicant {applicant_id}")
    return ApplicantInfo.from_row(row)


def find_applicant(session: Session, nik: str) -> ApplicantInfo | None:
    """The applicant of a NIK, if any (separators in `nik` are ignored).

    Knowing a NIK proves nothing: disclose status only to the linked owner.
    """
    try:
        digits = _sixteen_digits(nik, "NIK")
    except ValueError:
        return None
    applicant_id = _id_for_nik(session, digits)
    return None if applicant_id is None else get_applicant(session, applicant_id)


def set_applicant_status(
    session: Session, applicant_id: int, status: str, now: datetime | None = None
) -> ApplicantInfo:
    """Record participation: `registered`, `participant` or `revoked`."""
    if status not in APPLICANT_STATUSES:
        raise ValueError(f"unknown applicant status {status!r}")
    result = session.execute(
        update(applicants)
        .where(applicants.c.id == applicant_id)
        .values(status=status, updated_at=now_or(now))
    )
    if result.rowcount != 1:
        raise ApplicantNotFound(f"no applicant {applicant_id}")
    return get_applicant(session, applicant_id)


def reserve_kk_slot(
    session: Session, kk_number: str, cap: int | None, now: datetime | None = None
) -> int:
    """Count one more applicant on a KK, atomically against `cap`; the new count.

    The counter row is inserted if missing (`ON CONFLICT DO NOTHING`, race-safe),
    then `UPDATE ... SET registered_count = registered_count + 1 WHERE
    registered_count < cap`: concurrent reservations never exceed the cap.
    Raises `KkCapReached` (nothing changed). `cap` None counts without a limit.
    """
    if cap is not None and cap < 1:
        raise ValueError("cap must be at least 1 (None means no cap)")
    kk = _sixteen_digits(kk_number, "KK number")
    moment = now_or(now)
    insert_ignoring_conflict(
        session,
        kk_counts,
        {"kk_number": kk, "registered_count": 0, "updated_at": moment},
        ["kk_number"],
    )
    counted = COUNT_ONE_MORE[cap is not None].execute(
        session, {"kk": kk, "now": moment, "cap": cap}
    )
    if counted.rowcount != 1:
        raise KkCapReached(cap or 0)
    return kk_registered_count(session, kk)


def release_kk_slot(
    session: Session, kk_number: str, now: datetime | None = None
) -> int:
    """Give back one place on a KK (e.g. a registration dropped); the new count."""
    kk = _sixteen_digits(kk_number, "KK number")
    session.execute(
        update(kk_counts)
        .where(kk_counts.c.kk_number == kk, kk_counts.c.registered_count > 0)
        .values(
            registered_count=kk_counts.c.registered_count - 1,
            updated_at=now_or(now),
        )
    )
    return kk_registered_count(session, kk)


def kk_registered_count(session: Session, kk_number: str) -> int:
    """How many applicants are counted on a KK (0 when none)."""
    kk = _sixteen_digits(kk_number, "KK number")
    count = KK_COUNT.execute(session, {"kk": kk}).scalar_one_or_none()
    return int(count or 0)


def correct_applicant(
    session: Session,
    applicant_id: int,
    *,
    nik: str,
    kk_number: str,
    full_name: str,
    birth_date: date,
    kk_cap: int | None = None,
    now: datetime | None = None,
) -> ApplicantInfo:
    """Replace the identity data of an applicant whose NIK check failed.

    Used when Dukcapil did not know the NIK or the data did not match and the
    person typed it again. A new NIK must still be free (`AlreadyRegistered`);
    a new KK takes a place on that card (`KkCapReached`) and gives the old one
    back. Nothing is changed when a refusal is raised. A simultaneous insert of
    the same NIK still fails on `uq_applicant_nik` (IntegrityError). The caller
    checks that a correction is allowed.
    """
    current = get_applicant(session, applicant_id)
    name = full_name.strip()
    if not name or len(name) > NAME_MAX:
        raise ValueError(f"full name must be 1 to {NAME_MAX} characters")
    nik_digits = _sixteen_digits(nik, "NIK")
    kk_digits = _sixteen_digits(kk_number, "KK number")
    moment = now_or(now)
    if nik_digits != current.nik:
        owner = _id_for_nik(session, nik_digits)
        if owner is not None:
            raise AlreadyRegistered(owner)
    if kk_digits != current.kk_number:
        reserve_kk_slot(session, kk_digits, kk_cap, now=moment)
    taken = (
        select(other.c.id)
        .where(other.c.nik == nik_digits, other.c.id != applicant_id)
        .exists()
    )
    changed = session.execute(
        update(applicants)
        .where(applicants.c.id == applicant_id, ~taken)
        .values(
            nik=nik_digits,
            kk_number=kk_digits,
            full_name=name,
            birth_date=birth_date,
            updated_at=moment,
        )
    )
    if changed.rowcount != 1:  # another applicant took the NIK meanwhile
        if kk_digits != current.kk_number:
            release_kk_slot(session, kk_digits, now=moment)
        raise AlreadyRegistered(_id_for_nik(session, nik_digits) or 0)
    if kk_digits != current.kk_number:
        release_kk_slot(session, current.kk_number, now=moment)
    return get_applicant(session, applicant_id)
