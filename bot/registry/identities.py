"""Channel identities (Telegram user id, phone number) and their link to applicants.

An identity is created the first time someone writes; it is linked to an applicant
only once ownership is proven (registered in that chat, SMS from the registered
phone, or a code). Status is disclosed only through `owner_of`, never by NIK.
Nothing here commits: the caller owns the transaction. Refusals are raised before
anything is written.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session, aliased

from bot.direct_sql import DirectStatement
from bot.insert_ignoring import insert_ignoring_conflict
from bot.registry._sql import now_or
from bot.registry.applicants import get_applicant
from bot.registry.errors import (
    ApplicantHasIdentity,
    ApplicantNotFound,
    IdentityLinked,
    IdentityNotFound,
)
from bot.registry.models import (
    CHANNEL_SMS,
    IDENTITY_CHANNELS,
    LINK_METHODS,
    Applicant,
    ChannelIdentity,
)
from bot.registry.records import ApplicantInfo, IdentityInfo

identities = ChannelIdentity.__table__
applicants = Applicant.__table__
# Built once (nearly every action looks its caller up): building a statement
# cost more than running it.
IDENTITY_OF = DirectStatement(
    select(identities).where(
        identities.c.channel == bindparam("channel"),
        identities.c.external_id == bindparam("external_id"),
    )
)
IDENTITY = DirectStatement(
    select(identities).where(identities.c.id == bindparam("identity_id"))
)
LOCK_APPLICANT = (
    select(applicants.c.id)
    .where(applicants.c.id == bindparam("applicant_id"))
    .with_for_update()
)
_other = aliased(ChannelIdentity)
LINK = (
    update(identities)
    .where(
        identities.c.id == bindparam("link_identity"),
        identities.c.applicant_id.is_(None),
        ~select(_other.id)
        .where(
            and_(
                _other.applicant_id == bindparam("to_applicant"),
                _other.channel == identities.c.channel,
            )
        )
        .exists(),
    )
    .values(
        applicant_id=bindparam("to_applicant"),
        linked_at=bindparam("at"),
        link_method=bindparam("how"),
    )
)
"""Link an unlinked identity unless the applicant has another on its channel."""
LINKED_TO = (
    select(identities)
    .where(identities.c.applicant_id == bindparam("applicant_id"))
    .order_by(identities.c.channel, identities.c.id)
)
EXTERNAL_ID_MAX = 128


def _check(channel: str, external_id: str) -> str:
    if channel not in IDENTITY_CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    clean = external_id.strip()
    if not clean or len(clean) > EXTERNAL_ID_MAX:
        raise ValueError(f"external id must be 1 to {EXTERNAL_ID_MAX} characters")
    return clean


def find_identity(
    session: Session, channel: str, external_id: str
) -> IdentityInfo | None:
    """The identity of a Telegram user id or an E.164 phone number, if known."""
    clean = _check(channel, external_id)
    row = IDENTITY_OF.execute(
        session, {"channel": channel, "external_id": clean}
    ).one_or_none()
    return None if row is None else IdentityInfo.from_row(row)


def get_identity(session: Session, identity_id: int) -> IdentityInfo:
    """The identity with this id; `IdentityNotFound` if there is none."""
    row = IDENTITY.execute(session, {"identity_id": identity_id}).one_or_none()
    if row is None:
        raise IdentityNotFound(f"no identity {identity_id}")
    return IdentityInfo.from_row(row)


def get_or_create_identity(
    session: Session, channel: str, external_id: str, now: datetime | None = None
) -> IdentityInfo:
    """The identity of (channel, external id), created unlinked if new.

    `external_id` is the Telegram user id or the sender's E.164 number, as the
    gateway stores it. Two first messages racing create one row.
    """
    found = find_identity(session, channel, external_id)
    if found is not None:
        return found
    insert_ignoring_conflict(
        session,
        identities,
        {
            "channel": channel,
            "external_id": _check(channel, external_id),
            "created_at": now_or(now),
        },
        ["channel", "external_id"],
    )
    created = find_identity(session, channel, external_id)
    assert created is not None
    return created


def link_identity(
    session: Session,
    identity_id: int,
    applicant_id: int,
    method: str,
    now: datetime | None = None,
) -> IdentityInfo:
    """Link an identity to its applicant once ownership is proven (idempotent).

    Raises `IdentityLinked` when the identity belongs to another applicant and
    `ApplicantHasIdentity` when the applicant already has another identity on
    that channel (unlink it first). The applicant row is locked on PostgreSQL so
    links of one applicant are decided one at a time; on SQLite the conditional
    `UPDATE` itself is atomic.
    """
    if method not in LINK_METHODS:
        raise ValueError(f"unknown link method {method!r}")
    locked = session.execute(
        LOCK_APPLICANT, {"applicant_id": applicant_id}
    ).scalar_one_or_none()
    if locked is None:
        raise ApplicantNotFound(f"no applicant {applicant_id}")
    identity = get_identity(session, identity_id)
    if identity.applicant_id == applicant_id:
        return identity
    if identity.applicant_id is not None:
        raise IdentityLinked(f"identity {identity_id} belongs to another applicant")
    result = session.execute(
        LINK,
        {
            "link_identity": identity_id,
            "to_applicant": applicant_id,
            "at": now_or(now),
            "how": method,
        },
    )
    identity = get_identity(session, identity_id)
    if result.rowcount == 1 or identity.applicant_id == applicant_id:
        return identity
    if identity.applicant_id is not None:
        raise IdentityLinked(f"identity {identity_id} belongs to another applicant")
    raise ApplicantHasIdentity(
        f"applicant {applicant_id} already has a {identity.channel} identity"
    )


def unlink_identity(session: Session, identity_id: int) -> IdentityInfo:
    """Remove an identity's link (lost phone, wrong person); idempotent."""
    session.execute(
        update(identities)
        .where(identities.c.id == identity_id)
        .values(applicant_id=None, linked_at=None, link_method=None)
    )
    return get_identity(session, identity_id)


def identities_of(session: Session, applicant_id: int) -> list[IdentityInfo]:
    """The identities linked to an applicant, by channel."""
    rows = session.execute(LINKED_TO, {"applicant_id": applicant_id}).all()
    return [IdentityInfo.from_row(row) for row in rows]


def owner_of(session: Session, channel: str, external_id: str) -> ApplicantInfo | None:
    """The applicant this identity may see the status of, or None.

    Only a linked identity owns a registration; over SMS the sender must moreover
    be the applicant's registered phone (a re-assigned number loses access as
    soon as the phone on record changes).
    """
    identity = find_identity(session, channel, external_id)
    if identity is None or identity.applicant_id is None:
        return None
    applicant = get_applicant(session, identity.applicant_id)
    if channel == CHANNEL_SMS and applicant.phone != identity.external_id:
        return None
    return applicant
