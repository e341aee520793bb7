"""Batches (gelombang): their windows and quotas, joining them, selection results.

Joining is one conditional `UPDATE batch SET joined_count = joined_count + 1 WHERE
joined_count < quota AND opens_at <= now < closes_at`, then the membership insert:
concurrent joins can never push a batch over its quota (the row update is
serialised by the database, and `ck_batch_joined_le_quota` backs it up). Joining
the same batch again returns the existing membership and counts nothing.
Nothing here commits: the caller owns the transaction. A refusal is raised only
after the function has undone its own writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import bindparam, case, or_, select, update
from sqlalchemy.orm import Session

from bot.direct_sql import DirectStatement
from bot.insert_ignoring import insert_ignoring_conflict
from bot.policy.programme import Policy
from bot.registry._sql import naive_utc, now_or
from bot.registry.errors import (
    AlreadyInBatch,
    ApplicantNotFound,
    BatchClosed,
    BatchFull,
    BatchNotFound,
    NotEligible,
)
from bot.registry.models import (
    APPLICANT_REGISTERED,
    MEMBERSHIP_RESULTS,
    RESULT_PENDING,
    Applicant,
    Batch,
    BatchMembership,
    BatchRun,
)
from bot.registry.records import BatchInfo, MembershipInfo

batches = Batch.__table__
memberships = BatchMembership.__table__
applicants = Applicant.__table__
runs = BatchRun.__table__


def ensure_batch(
    session: Session,
    number: int,
    opens_at: datetime,
    closes_at: datetime,
    quota: int,
    now: datetime | None = None,
) -> BatchInfo:
    """The batch with this number, created if missing (an existing one is kept).

    Aware datetimes (e.g. WIB from the policy file) are stored as naive UTC.
    """
    opens, closes = naive_utc(opens_at), naive_utc(closes_at)
    if number < 1 or quota < 1 or closes <= opens:
        raise ValueError("a batch needs number >= 1, quota >= 1 and closes > opens")
    insert_ignoring_conflict(
        session,
        batches,
        {
            "number": number,
            "opens_at": opens,
            "closes_at": closes,
            "quota": quota,
            "joined_count": 0,
            "created_at": now_or(now),
        },
        ["number"],
    )
    found = batch_by_number(session, number)
    assert found is not None
    return found


def ensure_policy_batches(session: Session, policy: Policy) -> list[BatchInfo]:
    """The batches of a policy's schedule (`waves`), created if missing."""
    return [
        ensure_batch(session, wave.number, wave.opens, wave.closes, wave.quota)
        for wave in policy.waves
    ]


def get_batch(session: Session, batch_id: int) -> BatchInfo:
    """The batch with this id; `BatchNotFound` if there is none."""
    row = BATCH.execute(session, {"batch_id": batch_id}).one_or_none()
    if row is None:
        raise BatchNotFound(f"no batch {batch_id}")
    return BatchInfo.from_row(row)


def batch_by_number(session: Session, number: int) -> BatchInfo | None:
    """The batch with this number (gelombang N), if any."""
    row = BATCH_NUMBERED.execute(session, {"number": number}).one_or_none()
    return None if row is None else BatchInfo.from_row(row)


def open_batches(session: Session, now: datetime | None = None) -> list[BatchInfo]:
    """Batches open at `now` with places left, by number."""
    rows = OPEN_BATCHES.execute(session, {"now": now_or(now)}).all()
    return [BatchInfo.from_row(row) for row in rows]


def next_batch(session: Session, after_number: int) -> BatchInfo | None:
    """The first batch numbered after `after_number` (the next wave), if any."""
    row = NEXT_BATCH.execute(session, {"after": after_number}).one_or_none()
    return None if row is None else BatchInfo.from_row(row)


def _membership_query() -> Any:
    return select(
        memberships.c.id,
        memberships.c.applicant_id,
        memberships.c.batch_id,
        batches.c.number,
        memberships.c.joined_at,
        memberships.c.result,
        memberships.c.decided_at,
        memberships.c.excluded_reason,
        memberships.c.purchase_deadline,
        # A result recorded by hand, outside a batch run, is known at once.
        case(
            (runs.c.batch_id.is_(None), memberships.c.decided_at),
            else_=runs.c.published_at,
        ).label("published_at"),
    ).select_from(
        memberships.join(batches, batches.c.id == memberships.c.batch_id).outerjoin(
            runs, runs.c.batch_id == memberships.c.batch_id
        )
    )


# Built once: the batch and membership reads come on most turns about a batch,
# and building one of these statements cost more than running it.
BATCH = DirectStatement(select(batches).where(batches.c.id == bindparam("batch_id")))
BATCH_NUMBERED = DirectStatement(
    select(batches).where(batches.c.number == bindparam("number"))
)
OPEN_BATCHES = DirectStatement(
    select(batches)
    .where(
        batches.c.opens_at <= bindparam("now"),
        batches.c.closes_at > bindparam("now"),
        batches.c.joined_count < batches.c.quota,
    )
    .order_by(batches.c.number)
)
NEXT_BATCH = DirectStatement(
    select(batches)
    .where(batches.c.number > bindparam("after"))
    .order_by(batches.c.number)
    .limit(1)
)
MEMBERSHIP = DirectStatement(
    _membership_query().where(
        memberships.c.applicant_id == bindparam("applicant_id"),
        memberships.c.batch_id == bindparam("batch_id"),
    )
)
PENDING_MEMBERSHIP = DirectStatement(
    _membership_query().where(
        memberships.c.applicant_id == bindparam("applicant_id"),
        memberships.c.result == RESULT_PENDING,
    )
)
STANDING = DirectStatement(
    _membership_query().where(
        memberships.c.applicant_id == bindparam("applicant_id"),
        or_(
            memberships.c.batch_id == bindparam("batch_id"),
            memberships.c.result == RESULT_PENDING,
        ),
    )
)
"""The applicant's membership of one batch and any pending one, in one read."""
UPCOMING_BATCH = DirectStatement(
    select(batches)
    .where(batches.c.opens_at > bindparam("now"))
    .order_by(batches.c.opens_at, batches.c.number)
    .limit(1)
)
APPLICANT_STATUS = DirectStatement(
    select(applicants.c.status).where(applicants.c.id == bindparam("applicant_id"))
)
TAKE_PLACE = DirectStatement(
    update(batches)
    .where(
        batches.c.id == bindparam("batch_id"),
        batches.c.joined_count < batches.c.quota,
        batches.c.opens_at <= bindparam("now"),
        batches.c.closes_at > bindparam("now"),
    )
    .values(joined_count=batches.c.joined_count + 1)
)
"""Count one more member while the batch is open and has a place left."""
MEMBERSHIPS_OF = DirectStatement(
    _membership_query()
    .where(memberships.c.applicant_id == bindparam("applicant_id"))
    .order_by(batches.c.number)
)


def _membership(row: Any) -> MembershipInfo:
    return MembershipInfo(
        id=row.id,
        applicant_id=row.applicant_id,
        batch_id=row.batch_id,
        batch_number=row.number,
        joined_at=row.joined_at,
        result=row.result,
        decided_at=row.decided_at,
        published_at=row.published_at,
        excluded_reason=row.excluded_reason,
        purchase_deadline=row.purchase_deadline,
    )


def membership(
    session: Session, applicant_id: int, batch_id: int
) -> MembershipInfo | None:
    """The applicant's membership of one batch, if any."""
    row = MEMBERSHIP.execute(
        session, {"applicant_id": applicant_id, "batch_id": batch_id}
    ).one_or_none()
    return None if row is None else _membership(row)


def pending_membership(session: Session, applicant_id: int) -> MembershipInfo | None:
    """The membership still waiting for selection (at most one), if any."""
    row = PENDING_MEMBERSHIP.execute(
        session, {"applicant_id": applicant_id}
    ).one_or_none()
    return None if row is None else _membership(row)


def memberships_of(session: Session, applicant_id: int) -> list[MembershipInfo]:
    """Every batch the applicant joined, oldest batch first."""
    rows = MEMBERSHIPS_OF.execute(session, {"applicant_id": applicant_id}).all()
    return [_membership(row) for row in rows]


def join_batch(
    session: Session, applicant_id: int, batch_id: int, now: datetime | None = None
) -> MembershipInfo:
    """Put the applicant in a batch, atomically against its quota and window.

    Idempotent: joining a batch already joined returns that membership and counts
    nothing. Raises `ApplicantNotFound`, `NotEligible` (participant or revoked:
    the programme is once in a lifetime), `BatchNotFound`, `BatchClosed` (not yet
    open or closed), `BatchFull`, or `AlreadyInBatch` (waiting for selection in
    another batch; after "not selected" the next batch may be joined).
    """
    moment = now_or(now)
    status = APPLICANT_STATUS.execute(
        session, {"applicant_id": applicant_id}
    ).scalar_one_or_none()
    if status is None:
        raise ApplicantNotFound(f"no applicant {applicant_id}")
    if status != APPLICANT_REGISTERED:
        raise NotEligible(str(status))
    existing = _standing(session, applicant_id, batch_id)
    if existing is not None:
        return existing
    counted = TAKE_PLACE.execute(session, {"batch_id": batch_id, "now": moment})
    if counted.rowcount != 1:
        raced = _standing(session, applicant_id, batch_id)
        if raced is not None:  # a simultaneous join of the same applicant won
            return raced
        _refuse(session, batch_id, moment)
    inserted = insert_ignoring_conflict(
        session,
        memberships,
        {
            "applicant_id": applicant_id,
            "batch_id": batch_id,
            "joined_at": moment,
            "result": RESULT_PENDING,
        },
    )
    if inserted:
        found = membership(session, applicant_id, batch_id)
        assert found is not None
        return found
    # A simultaneous join of the same applicant won: take the place back.
    session.execute(
        update(batches)
        .where(batches.c.id == batch_id)
        .values(joined_count=batches.c.joined_count - 1)
    )
    found = _standing(session, applicant_id, batch_id)
    if found is None:  # the conflicting membership was decided in between
        raise RuntimeError("batch membership changed while joining; try again")
    return found


def _standing(
    session: Session, applicant_id: int, batch_id: int
) -> MembershipInfo | None:
    """The applicant's membership of this batch, if any; `AlreadyInBatch` when
    another batch's selection is pending. One query, so a join committing in
    between cannot make the two answers disagree."""
    rows = STANDING.execute(
        session, {"applicant_id": applicant_id, "batch_id": batch_id}
    ).all()
    found = [_membership(row) for row in rows]
    for item in found:
        if item.batch_id == batch_id:
            return item
    if found:
        raise AlreadyInBatch(found[0].batch_number)
    return None


def _refuse(session: Session, batch_id: int, moment: datetime) -> NoReturn:
    """Raise why a batch could not be joined (nothing was written)."""
    batch = get_batch(session, batch_id)
    if moment < batch.opens_at:
        raise BatchClosed(batch.number, not_yet_open=True)
    if moment >= batch.closes_at:
        raise BatchClosed(batch.number, not_yet_open=False)
    raise BatchFull(batch.number)


@dataclass(frozen=True)
class Decision:
    """One membership's selection result, as the draw decided it (`draw_rank`:
    its place in the draw's order, kept in memory only: the seed reproduces it)."""

    membership_id: int
    result: str
    draw_rank: int | None = None
    excluded_reason: str | None = None


DECISION_CHUNK = 5000
"""Membership ids per UPDATE (well under SQLite's 32,766 parameters)."""


def record_decisions(
    session: Session, decisions: Sequence[Decision], now: datetime | None = None
) -> int:
    """Record many results (first result wins: a decided membership is left as
    it is); how many were recorded now. One `UPDATE ... WHERE id IN (...)` per
    result, reason and chunk of ids: a few dozen statements for 164,000."""
    groups: dict[tuple[str, str | None], list[int]] = {}
    for decision in decisions:
        if decision.result not in MEMBERSHIP_RESULTS or decision.result == (
            RESULT_PENDING
        ):
            raise ValueError(f"unknown selection result {decision.result!r}")
        key = (decision.result, decision.excluded_reason)
        groups.setdefault(key, []).append(decision.membership_id)
    moment = now_or(now)
    recorded = 0
    for (result, reason), ids in groups.items():
        for start in range(0, len(ids), DECISION_CHUNK):
            done = session.execute(
                update(memberships)
                .where(
                    memberships.c.id.in_(ids[start : start + DECISION_CHUNK]),
                    memberships.c.result == RESULT_PENDING,
                )
                .values(result=result, excluded_reason=reason, decided_at=moment)
            )
            recorded += max(done.rowcount, 0)
    return recorded


def record_selection(
    session: Session,
    applicant_id: int,
    batch_id: int,
    result: str,
    now: datetime | None = None,
) -> MembershipInfo:
    """Record the selection result of a pending membership (first result wins).

    `result` is `selected` or `not_selected`; a decided membership is returned
    unchanged. Raises `ValueError` when the applicant is not in the batch.
    """
    found = membership(session, applicant_id, batch_id)
    if found is None:
        if result not in MEMBERSHIP_RESULTS or result == RESULT_PENDING:
            raise ValueError(f"unknown selection result {result!r}")
        raise ValueError("the applicant is not in this batch")
    record_decisions(session, [Decision(found.id, result)], now)
    decided = membership(session, applicant_id, batch_id)
    assert decided is not None
    return decided


def upcoming_batch(session: Session, now: datetime | None = None) -> BatchInfo | None:
    """The first batch that opens after `now`, if any."""
    row = UPCOMING_BATCH.execute(session, {"now": now_or(now)}).first()
    return None if row is None else BatchInfo.from_row(row)
