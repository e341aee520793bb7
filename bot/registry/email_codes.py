"""One-time codes that prove an e-mail address (sent by mail, typed in the chat).

Only an HMAC-SHA256 of the code (keyed with a secret the caller passes, bound to
the address) is stored here; the code itself exists only in the mail (and in
the mail queue's row until that mail is handed over, `bot.notify.queue`). Only
the newest code of an owner counts; it expires, and allows `max_attempts` tries,
counted by an atomic conditional `UPDATE`, so parallel guesses cannot exceed the
limit.
Comparison is constant-time. Nothing here commits: commit after a wrong attempt
too, or it is not counted.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from bot.policy.validation import validate_email
from bot.registry._sql import SubjectKind, naive_utc, now_or, subject, subject_clauses
from bot.registry.models import EmailCode
from bot.registry.records import CodeCheck, IssuedCode

codes = EmailCode.__table__

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=15)
MAX_ATTEMPTS = 5
MIN_SECRET_BYTES = 16

OK = "ok"
WRONG = "wrong"
EXPIRED = "expired"
TOO_MANY_ATTEMPTS = "too_many_attempts"
USED = "used"
NO_CODE = "no_code"


def code_hash(secret: bytes, email: str, code: str) -> str:
    """The stored form of a code: HMAC-SHA256 over the address and the code."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the code secret needs at least {MIN_SECRET_BYTES} bytes")
    message = f"{email}\x00{code}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


# The statements are built once (a registration runs most of them): building
# one cost more than running it. An owner is an identity, an applicant or both.
INSERT_CODE = insert(codes)
CODE = select(codes).where(codes.c.id == bindparam("code_id"))
COUNT_ATTEMPT = (
    update(codes)
    .where(
        codes.c.id == bindparam("code_id"),
        codes.c.used_at.is_(None),
        codes.c.expires_at > bindparam("now"),
        codes.c.attempts < bindparam("max_attempts"),
    )
    .values(attempts=codes.c.attempts + 1)
)
MARK_USED = (
    update(codes)
    .where(codes.c.id == bindparam("code_id"), codes.c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)
PROVEN = select(func.max(codes.c.used_at)).where(
    codes.c.identity_id == bindparam("identity_id"),
    codes.c.applicant_id.is_(None),
    codes.c.email == bindparam("email"),
    codes.c.used_at.is_not(None),
)


NO_OWNER = "a code belongs to an identity or an applicant"


@cache
def _count_since(kind: SubjectKind) -> Any:
    return (
        select(func.count())
        .select_from(codes)
        .where(*subject_clauses(codes, kind), codes.c.created_at >= bindparam("since"))
    )


@cache
def _latest_of(kind: SubjectKind) -> Any:
    return (
        select(codes)
        .where(*subject_clauses(codes, kind))
        .order_by(codes.c.id.desc())
        .limit(1)
    )


def create_email_code(
    session: Session,
    secret: bytes,
    email: str,
    *,
    identity_id: int | None = None,
    applicant_id: int | None = None,
    ttl: timedelta = CODE_TTL,
    digits: int = CODE_DIGITS,
    now: datetime | None = None,
) -> IssuedCode:
    """A new code for `email` (lowered); it replaces the owner's earlier codes.

    Mail `IssuedCode.code` and forget it. Resend limits are the caller's
    (`codes_sent_since`).
    """
    check = validate_email(email)
    if not check.valid or check.normalized is None:
        raise ValueError("email is not a valid address")
    if not 4 <= digits <= 10 or ttl <= timedelta(0):
        raise ValueError("codes have 4 to 10 digits and a positive lifetime")
    subject(identity_id, applicant_id, NO_OWNER)  # checks there is an owner
    moment = now_or(now)
    code = f"{secrets.randbelow(10**digits):0{digits}d}"
    result = session.execute(
        INSERT_CODE,
        {
            "identity_id": identity_id,
            "applicant_id": applicant_id,
            "email": check.normalized,
            "code_hash": code_hash(secret, check.normalized, code),
            "created_at": moment,
            "expires_at": moment + ttl,
            "attempts": 0,
        },
    )
    return IssuedCode(
        id=int(result.inserted_primary_key[0]), code=code, expires_at=moment + ttl
    )


def codes_sent_since(
    session: Session,
    since: datetime,
    *,
    identity_id: int | None = None,
    applicant_id: int | None = None,
) -> int:
    """How many codes the owner was sent since `since` (for resend limits)."""
    kind, owner = subject(identity_id, applicant_id, NO_OWNER)
    count = session.execute(
        _count_since(kind), {**owner, "since": naive_utc(since)}
    ).scalar_one()
    return int(count)


def _latest(session: Session, identity_id: int | None, applicant_id: int | None) -> Any:
    """The owner's newest code row, if any."""
    kind, owner = subject(identity_id, applicant_id, NO_OWNER)
    return session.execute(_latest_of(kind), owner).one_or_none()


def _state(row: Any, moment: datetime, max_attempts: int) -> str | None:
    """Why the code can no longer be tried, or None when it can."""
    if row.used_at is not None:
        return USED
    if row.expires_at <= moment:
        return EXPIRED
    if row.attempts >= max_attempts:
        return TOO_MANY_ATTEMPTS
    return None


def code_usable(
    session: Session,
    *,
    identity_id: int | None = None,
    applicant_id: int | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    now: datetime | None = None,
) -> bool:
    """Whether the owner's newest code can still be typed (not used, not
    expired, not tried too often)."""
    row = _latest(session, identity_id, applicant_id)
    return row is not None and _state(row, now_or(now), max_attempts) is None


def verify_email_code(
    session: Session,
    secret: bytes,
    code: str,
    *,
    identity_id: int | None = None,
    applicant_id: int | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    now: datetime | None = None,
) -> CodeCheck:
    """Check a typed code against the owner's newest code; counts the attempt.

    `outcome`: `ok` (the code is used up now and `email` is proven), `wrong`
    (`attempts_left` tries remain), `expired`, `too_many_attempts`, `used`, or
    `no_code`.
    """
    moment = now_or(now)
    row = _latest(session, identity_id, applicant_id)
    if row is None:
        return CodeCheck(NO_CODE)
    refused = _state(row, moment, max_attempts)
    if refused is not None:
        return CodeCheck(refused, row.email)
    counted = session.execute(
        COUNT_ATTEMPT,
        {"code_id": row.id, "now": moment, "max_attempts": max_attempts},
    )
    if counted.rowcount != 1:  # used or exhausted by a parallel attempt
        current = session.execute(CODE, {"code_id": row.id}).one_or_none()
        return CodeCheck(_state(current, moment, max_attempts) or USED, row.email)
    attempts = row.attempts + 1
    typed = "".join(code.split())
    expected = code_hash(secret, row.email, typed)
    if not hmac.compare_digest(expected, row.code_hash):
        return CodeCheck(WRONG, row.email, max(max_attempts - attempts, 0))
    used = session.execute(MARK_USED, {"code_id": row.id, "now": moment})
    if used.rowcount != 1:
        return CodeCheck(USED, row.email)
    return CodeCheck(OK, row.email, max(max_attempts - attempts, 0))


def proven_email(session: Session, identity_id: int, email: str) -> datetime | None:
    """When `email` was proven by a code typed in this identity's chat, if ever.

    Only codes owned by the identity alone count (not codes that link the
    identity to an existing applicant).
    """
    check = validate_email(email)
    if not check.valid or check.normalized is None:
        return None
    used = session.execute(
        PROVEN, {"identity_id": identity_id, "email": check.normalized}
    ).scalar_one_or_none()
    return used if isinstance(used, datetime) else None
