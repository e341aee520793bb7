"""Reminders owed before the purchase deadline, stored as due work.

Written when results are published, for each selected member and each of
`REMINDER_DAYS` whose moment is still ahead: one `due_notice` row with the key
`purchase:<membership id>:<days>` (unique, so writing them again is a no-op).
Whoever delivers them (the announcement sender, through the gateway's outbox)
takes `due_notices(now)` and marks each one `sent` or `cancelled` once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, cast, literal, select, update
from sqlalchemy.orm import Session

from bot.registry._sql import upsert_statement
from bot.registry.models import RESULT_SELECTED, BatchMembership
from bot.selection.models import (
    NOTICE_CANCELLED,
    NOTICE_PENDING,
    NOTICE_PURCHASE_REMINDER,
    NOTICE_SENT,
    DueNotice,
)

REMINDER_DAYS = (7, 2)
"""Days before the purchase deadline that a selected member is reminded."""

notices = DueNotice.__table__
memberships = BatchMembership.__table__


@dataclass(frozen=True)
class NoticeInfo:
    """A notice owed to one applicant."""

    id: int
    key: str
    kind: str
    applicant_id: int
    membership_id: int
    days_before: int
    due_at: datetime
    status: str
    done_at: datetime | None


def reminder_key(membership_id: int, days_before: int) -> str:
    """The idempotency key of one purchase reminder."""
    return f"purchase:{membership_id}:{days_before}"


def create_reminders(
    session: Session,
    batch_id: int,
    now: datetime,
    days: Sequence[int] = REMINDER_DAYS,
) -> int:
    """Reminders for the batch's selected members whose moment is after `now`;
    how many were written now. One `INSERT ... SELECT` per deadline (members of
    one policy version share it) and reminder day."""
    deadlines = session.execute(
        select(memberships.c.purchase_deadline)
        .distinct()
        .where(
            memberships.c.batch_id == batch_id,
            memberships.c.result == RESULT_SELECTED,
            memberships.c.purchase_deadline.is_not(None),
        )
    ).scalars()
    written = 0
    for deadline in list(deadlines):
        for before in days:
            due = deadline - timedelta(days=before)
            if due <= now:
                continue
            key = (
                literal("purchase:")
                + cast(memberships.c.id, String)
                + literal(f":{before}")
            )
            source = select(
                key,
                literal(NOTICE_PURCHASE_REMINDER),
                memberships.c.applicant_id,
                memberships.c.id,
                literal(before),
                literal(due),
                literal(NOTICE_PENDING),
                literal(now),
            ).where(
                memberships.c.batch_id == batch_id,
                memberships.c.result == RESULT_SELECTED,
                memberships.c.purchase_deadline == deadline,
            )
            statement = (
                upsert_statement(session, notices)
                .from_select(
                    [
                        "key",
                        "kind",
                        "applicant_id",
                        "membership_id",
                        "days_before",
                        "due_at",
                        "status",
                        "created_at",
                    ],
                    source,
                )
                .on_conflict_do_nothing(index_elements=["key"])
            )
            written += max(session.execute(statement).rowcount, 0)
    return written


def _notice(row: object) -> NoticeInfo:
    return NoticeInfo(
        **{name: getattr(row, name) for name in NoticeInfo.__dataclass_fields__}
    )


def due_notices(session: Session, now: datetime, limit: int = 500) -> list[NoticeInfo]:
    """Pending notices due at `now`, earliest first."""
    rows = session.execute(
        select(notices)
        .where(notices.c.status == NOTICE_PENDING, notices.c.due_at <= now)
        .order_by(notices.c.due_at, notices.c.id)
        .limit(limit)
    ).all()
    return [_notice(row) for row in rows]


def notices_of(session: Session, applicant_id: int) -> list[NoticeInfo]:
    """Every notice owed to (or given to) one applicant, by due moment."""
    rows = session.execute(
        select(notices)
        .where(notices.c.applicant_id == applicant_id)
        .order_by(notices.c.due_at, notices.c.id)
    ).all()
    return [_notice(row) for row in rows]


def finish_notice(session: Session, notice_id: int, sent: bool, now: datetime) -> bool:
    """Mark a pending notice sent (or cancelled); whether this call did it."""
    moved = session.execute(
        update(notices)
        .where(notices.c.id == notice_id, notices.c.status == NOTICE_PENDING)
        .values(status=NOTICE_SENT if sent else NOTICE_CANCELLED, done_at=now)
    )
    return bool(moved.rowcount == 1)
