"""Handing a batch's announcement and its reminders to the gateway's outbox.

Each move is one transaction that stores the outbox row(s) *and* moves the
announcement row (`pending -> queued`, with `outbox_id`) or the reminder
(`pending -> sent`): a crash before the commit leaves both as they were, after
it both are done, so no message is lost or stored twice. Rows are taken with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (several gateway processes feed at once
without waiting for each other) and moved by conditional updates, so a row is
moved once whoever else tries.

A member who opted out (SMS STOP) or whose identity is no longer linked to
them is `skipped`, without an outbox row. The outbox rows are bulk
(`PRIORITY_BULK`: claimed after every due live reply) and written by the
system. What became of a queued row flows back from its outbox row: `settle`
moves queued rows whose outbox row is done (sent, delivered, failed, and
`skipped` when the outbox dropped it because the person opted out meanwhile),
and `follow_outbox_status` applies a later delivery status (SMS) at once.

Nothing here commits: the caller owns each transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, case, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session

from bot.db import on_postgresql
from bot.messages.inbox import conversation_id
from bot.messages.models import (
    AUTHOR_SYSTEM,
    OPTED_OUT,
    OUTBOX_DELIVERED,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENT,
    OUTBOX_UNDELIVERED,
    PRIORITY_BULK,
    Conversation,
    OutboxMessage,
)
from bot.policy.programme import Policy, load_policy
from bot.registration.results import announcement_text, reminder_text
from bot.registry.models import (
    RUN_PUBLISHED,
    Batch,
    BatchMembership,
    BatchRun,
    ChannelIdentity,
)
from bot.selection.errors import LifecycleError
from bot.selection.models import (
    MESSAGE_DELIVERED,
    MESSAGE_FAILED,
    MESSAGE_PENDING,
    MESSAGE_QUEUED,
    MESSAGE_SENT,
    MESSAGE_SKIPPED,
    NOTICE_PENDING,
    NOTICE_SENT,
    AnnouncementMessage,
    DueNotice,
)

messages = AnnouncementMessage.__table__
notices = DueNotice.__table__
runs = BatchRun.__table__
batches = Batch.__table__
memberships = BatchMembership.__table__
identities = ChannelIdentity.__table__
conversations = Conversation.__table__
outbox = OutboxMessage.__table__

Render = Callable[[str, str], list[dict[str, Any]]]
"""(channel, text) -> the outbox bodies of that text on that channel."""

DONE_STATUSES = (MESSAGE_SENT, MESSAGE_DELIVERED, MESSAGE_FAILED, MESSAGE_SKIPPED)
"""An announcement row in one of these is finished (counted as done)."""


class FeedConflictError(Exception):
    """A row was moved by someone else during this move: roll it all back (the
    rows are taken again at the next look)."""


@dataclass(frozen=True)
class ActiveBatch:
    """A published batch whose announcement is not paused."""

    id: int
    number: int


@dataclass
class Fed:
    """What one move did."""

    queued: int = 0
    skipped: int = 0
    outbox_ids: list[int] = field(default_factory=list)


def active_batches(session: Session) -> list[ActiveBatch]:
    """Published, unpaused batches with announcement rows still pending, oldest
    publication first."""
    pending = exists().where(
        messages.c.batch_id == runs.c.batch_id, messages.c.status == MESSAGE_PENDING
    )
    rows = session.execute(
        select(runs.c.batch_id, batches.c.number)
        .join(batches, batches.c.id == runs.c.batch_id)
        .where(
            runs.c.state == RUN_PUBLISHED,
            runs.c.announce_paused_at.is_(None),
            pending,
        )
        .order_by(runs.c.published_at, runs.c.batch_id)
    ).all()
    return [ActiveBatch(int(row.batch_id), int(row.number)) for row in rows]


def published_batches(session: Session) -> list[int]:
    """Every published batch (paused or not): the ones `settle` looks at."""
    return [
        int(batch_id)
        for batch_id in session.execute(
            select(runs.c.batch_id).where(runs.c.state == RUN_PUBLISHED)
        ).scalars()
    ]


def bulk_in_outbox(session: Session) -> dict[str, int]:
    """Bulk rows waiting in the outbox per channel (the sender's window). The
    pending rows are few (live replies and this window), so this is cheap."""
    rows = session.execute(
        select(conversations.c.channel, func.count())
        .select_from(
            outbox.join(conversations, conversations.c.id == outbox.c.conversation_id)
        )
        .where(outbox.c.status == OUTBOX_PENDING, outbox.c.priority == PRIORITY_BULK)
        .group_by(conversations.c.channel)
    ).all()
    return {str(channel): int(count) for channel, count in rows}


@lru_cache(maxsize=16)
def _policy(version: str) -> Policy:
    return load_policy(version)


def _store_bulk(
    session: Session,
    channel: str,
    address: str,
    conversation: int | None,
    text: str,
    render: Render,
    key: str,
    now: datetime,
) -> int:
    """Store `text` for the person at (channel, address) as bulk outbox rows
    (the conversation is created if it is new); the first row's id."""
    if conversation is None:
        conversation = conversation_id(session, channel, address, key)
    first: int | None = None
    for seq, body in enumerate(render(channel, text)):
        result = session.execute(
            insert(outbox).values(
                conversation_id=conversation,
                inbox_id=None,
                seq=seq,
                body=body,
                author=AUTHOR_SYSTEM,
                ignore_opt_out=False,
                priority=PRIORITY_BULK,
                status=OUTBOX_PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        if first is None:
            first = int(result.inserted_primary_key[0])
    if first is None:
        raise ValueError("the channel rendered no body")
    return first


def feed_announcements(
    session: Session,
    batch: ActiveBatch,
    channel: str,
    limit: int,
    now: datetime,
    render: Render,
    key: str,
    simulated_only: bool = False,
) -> Fed:
    """Move up to `limit` pending rows of the batch on `channel` to the outbox
    (or to `skipped`); `FeedConflictError` when another process moved one of them
    meanwhile (roll back). `simulated_only`: only rows whose conversation is a
    simulator chat (no provider account for this channel here)."""
    fed = Fed()
    if limit <= 0:
        return fed
    query = (
        select(
            messages.c.id,
            messages.c.applicant_id,
            messages.c.text_key,
            messages.c.policy_version,
            identities.c.external_id,
            identities.c.applicant_id.label("owner"),
            identities.c.linked_at,
            conversations.c.id.label("conversation"),
            conversations.c.opted_out,
            memberships.c.purchase_deadline,
            memberships.c.excluded_reason,
        )
        .select_from(
            messages.join(identities, identities.c.id == messages.c.identity_id)
            .join(memberships, memberships.c.id == messages.c.membership_id)
            .outerjoin(
                conversations,
                and_(
                    conversations.c.channel == messages.c.channel,
                    conversations.c.address == identities.c.external_id,
                ),
            )
        )
        .where(
            messages.c.batch_id == batch.id,
            messages.c.channel == channel,
            messages.c.status == MESSAGE_PENDING,
        )
        .order_by(messages.c.id)
        .limit(limit)
    )
    if simulated_only:
        query = query.where(conversations.c.simulated.is_(True))
    if on_postgresql(session):
        query = query.with_for_update(skip_locked=True, of=messages)
    for row in session.execute(query).all():
        reachable = (
            row.linked_at is not None
            and row.owner == row.applicant_id
            and not row.opted_out
        )
        values: dict[str, Any] = {"status": MESSAGE_SKIPPED}
        if reachable:
            text = announcement_text(
                row.text_key,
                _policy(row.policy_version),
                batch.number,
                row.purchase_deadline,
                row.excluded_reason,
            )
            first = _store_bulk(
                session,
                channel,
                row.external_id,
                row.conversation,
                text,
                render,
                key,
                now,
            )
            values = {"status": MESSAGE_QUEUED, "outbox_id": first}
        moved = session.execute(
            update(messages)
            .where(messages.c.id == row.id, messages.c.status == MESSAGE_PENDING)
            .values(**values, updated_at=now, attempts=messages.c.attempts + 1)
        )
        if moved.rowcount != 1:  # taken meanwhile (SQLite has no SKIP LOCKED)
            raise FeedConflictError(row.id)
        if reachable:
            fed.queued += 1
            fed.outbox_ids.append(values["outbox_id"])
        else:
            fed.skipped += 1
    return fed


def _outcome() -> Any:
    """SQL: the announcement status an outbox row that is done stands for."""
    return case(
        (outbox.c.status == OUTBOX_SENT, literal(MESSAGE_SENT)),
        (outbox.c.status == OUTBOX_DELIVERED, literal(MESSAGE_DELIVERED)),
        (
            and_(outbox.c.status == OUTBOX_FAILED, outbox.c.last_error == OPTED_OUT),
            literal(MESSAGE_SKIPPED),
        ),
        else_=literal(MESSAGE_FAILED),  # failed, undelivered, unknown
    )


def settle(session: Session, batch_id: int, now: datetime) -> int:
    """Move the batch's queued rows whose outbox row is done (or gone) to what
    became of it; how many moved. Only queued rows are read: a few."""
    still_pending = exists().where(
        outbox.c.id == messages.c.outbox_id, outbox.c.status == OUTBOX_PENDING
    )
    outcome = (
        select(_outcome()).where(outbox.c.id == messages.c.outbox_id).scalar_subquery()
    )
    moved = session.execute(
        update(messages)
        .where(
            messages.c.batch_id == batch_id,
            messages.c.status == MESSAGE_QUEUED,
            ~still_pending,
        )
        .values(status=func.coalesce(outcome, MESSAGE_FAILED), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(moved.rowcount or 0)


def follow_outbox_status(
    session: Session, outbox_id: int, outbox_status: str, now: datetime
) -> None:
    """A delivery status came for outbox row `outbox_id`: a final one moves its
    announcement row (queued or sent) to delivered or failed."""
    if outbox_status == OUTBOX_DELIVERED:
        status = MESSAGE_DELIVERED
    elif outbox_status == OUTBOX_UNDELIVERED:
        status = MESSAGE_FAILED
    else:
        return
    session.execute(
        update(messages)
        .where(
            messages.c.outbox_id == outbox_id,
            messages.c.status.in_((MESSAGE_QUEUED, MESSAGE_SENT)),
        )
        .values(status=status, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _due_reminders(now: datetime) -> Any:
    return (
        select(notices.c.id)
        .select_from(
            notices.join(memberships, memberships.c.id == notices.c.membership_id).join(
                runs, runs.c.batch_id == memberships.c.batch_id
            )
        )
        .where(
            notices.c.status == NOTICE_PENDING,
            notices.c.due_at <= now,
            runs.c.announce_paused_at.is_(None),
        )
    )


def reminders_due(session: Session, now: datetime, limit: int) -> int:
    """How many reminders are due (of unpaused batches), counting up to `limit`."""
    ids = _due_reminders(now).limit(limit).subquery()
    return int(session.execute(select(func.count()).select_from(ids)).scalar_one())


def feed_reminders(
    session: Session,
    now: datetime,
    limit: int,
    render: Render,
    key: str,
    channels: Sequence[str] | None = None,
) -> Fed:
    """Hand up to `limit` due purchase reminders (of unpaused batches) to the
    outbox, one message per linked, reachable channel of the member (only
    `channels` when given), and mark each sent; a reminder nobody can receive
    is marked sent too, with no message (counted as skipped)."""
    fed = Fed()
    if limit <= 0:
        return fed
    due = _due_reminders(now)
    query = (
        select(
            notices.c.id,
            notices.c.applicant_id,
            notices.c.days_before,
            memberships.c.purchase_deadline,
        )
        .select_from(
            notices.join(memberships, memberships.c.id == notices.c.membership_id)
        )
        .where(notices.c.id.in_(due))
        .order_by(notices.c.due_at, notices.c.id)
        .limit(limit)
    )
    if on_postgresql(session):
        query = query.with_for_update(skip_locked=True, of=notices)
    for notice in session.execute(query).all():
        moved = session.execute(
            update(notices)
            .where(notices.c.id == notice.id, notices.c.status == NOTICE_PENDING)
            .values(status=NOTICE_SENT, done_at=now)
        )
        if moved.rowcount != 1:
            continue
        targets = session.execute(
            select(
                identities.c.channel,
                identities.c.external_id,
                conversations.c.id.label("conversation"),
                conversations.c.opted_out,
            )
            .select_from(
                identities.outerjoin(
                    conversations,
                    and_(
                        conversations.c.channel == identities.c.channel,
                        conversations.c.address == identities.c.external_id,
                    ),
                )
            )
            .where(
                identities.c.applicant_id == notice.applicant_id,
                identities.c.linked_at.is_not(None),
            )
            .order_by(identities.c.id)
        ).all()
        text = reminder_text(notice.purchase_deadline, notice.days_before)
        stored = 0
        for target in targets:
            if target.opted_out or (
                channels is not None and target.channel not in channels
            ):
                continue
            first = _store_bulk(
                session,
                target.channel,
                target.external_id,
                target.conversation,
                text,
                render,
                key,
                now,
            )
            fed.outbox_ids.append(first)
            stored += 1
        if stored:
            fed.queued += stored
        else:
            fed.skipped += 1
    return fed


def set_paused(session: Session, batch_id: int, paused: bool, now: datetime) -> None:
    """Pause (or resume) a published batch's announcement and reminders; refused
    (`LifecycleError`) before publication or when it already is so."""
    state = session.execute(
        select(runs.c.state, runs.c.announce_paused_at).where(
            runs.c.batch_id == batch_id
        )
    ).one_or_none()
    if state is None or state.state != RUN_PUBLISHED:
        raise LifecycleError("not_published")
    moved = session.execute(
        update(runs)
        .where(
            runs.c.batch_id == batch_id,
            runs.c.state == RUN_PUBLISHED,
            runs.c.announce_paused_at.is_(None)
            if paused
            else runs.c.announce_paused_at.is_not(None),
        )
        .values(announce_paused_at=now if paused else None, updated_at=now)
    )
    if moved.rowcount != 1:
        raise LifecycleError("already_paused" if paused else "not_paused")


def paused_at(session: Session, batch_id: int) -> datetime | None:
    """When the batch's announcement was paused (None: running or not published)."""
    moment = session.execute(
        select(runs.c.announce_paused_at).where(runs.c.batch_id == batch_id)
    ).scalar_one_or_none()
    return moment if isinstance(moment, datetime) else None
