"""The announcement's messages: one row per member and linked channel.

Written when the results are published, in the same transaction, by one
`INSERT ... SELECT` per policy version (idempotent: the pair membership and
channel identity is unique). A row names who (applicant, identity, channel),
which text (`text_key` and the member's policy version; the words are rendered
when sent, by `bot.registration.results.announcement_text`) and where it stands
(`status`, the gateway's `outbox_id` once handed over). The sender pages
through `pending_messages` by id and moves each row with `mark_message`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, literal, select, update
from sqlalchemy.orm import Session, aliased

from bot.policy.programme import load_policy
from bot.registry._sql import upsert_statement
from bot.registry.models import (
    RESULT_NOT_SELECTED,
    RESULT_SELECTED,
    Applicant,
    BatchMembership,
    ChannelIdentity,
)
from bot.selection.models import (
    MESSAGE_PENDING,
    MESSAGE_STATUSES,
    AnnouncementMessage,
)

TEXT_SELECTED = "selected"
TEXT_EXCLUDED = "excluded"  # not selected, and the re-check says why
TEXT_NOT_SELECTED = "not_selected"
TEXT_NOT_SELECTED_AGAIN = "not_selected_again"  # the "failed n times" statement
TEXT_KEYS = (TEXT_SELECTED, TEXT_EXCLUDED, TEXT_NOT_SELECTED, TEXT_NOT_SELECTED_AGAIN)

messages = AnnouncementMessage.__table__
memberships = BatchMembership.__table__
applicants = Applicant.__table__
identities = ChannelIdentity.__table__


@dataclass(frozen=True)
class MessageRow:
    """One announcement message to send."""

    id: int
    batch_id: int
    membership_id: int
    applicant_id: int
    identity_id: int
    channel: str
    text_key: str
    policy_version: str
    status: str
    attempts: int
    outbox_id: int | None = None


def _failures(batch_id: int) -> Any:
    """Per member of the batch, how many of their batches did not select them
    (one aggregate, joined: not a subquery per row)."""
    earlier = aliased(memberships)
    return (
        select(earlier.c.applicant_id, func.count().label("failures"))
        .where(
            earlier.c.result == RESULT_NOT_SELECTED,
            earlier.c.applicant_id.in_(
                select(memberships.c.applicant_id).where(
                    memberships.c.batch_id == batch_id
                )
            ),
        )
        .group_by(earlier.c.applicant_id)
        .subquery()
    )


def _text_key(failures: Any, failures_for_statement: int) -> Any:
    """SQL choosing the text of a member's result."""
    return case(
        (memberships.c.result == RESULT_SELECTED, literal(TEXT_SELECTED)),
        (memberships.c.excluded_reason.is_not(None), literal(TEXT_EXCLUDED)),
        (
            func.coalesce(failures.c.failures, 0) >= failures_for_statement,
            literal(TEXT_NOT_SELECTED_AGAIN),
        ),
        else_=literal(TEXT_NOT_SELECTED),
    )


def create_announcements(session: Session, batch_id: int, now: datetime) -> int:
    """One pending message per decided member of the batch and linked channel
    identity; how many were written now (none the second time)."""
    versions = session.execute(
        select(applicants.c.policy_version)
        .distinct()
        .select_from(
            memberships.join(applicants, applicants.c.id == memberships.c.applicant_id)
        )
        .where(memberships.c.batch_id == batch_id)
    ).scalars()
    failures = _failures(batch_id)
    written = 0
    for version in list(versions):
        policy = load_policy(version)
        source = (
            select(
                memberships.c.batch_id,
                memberships.c.id,
                memberships.c.applicant_id,
                identities.c.id,
                identities.c.channel,
                _text_key(failures, policy.selection.failures_for_statement),
                literal(version),
                literal(MESSAGE_PENDING),
                literal(0),
                literal(now),
                literal(now),
            )
            .select_from(
                memberships.join(
                    applicants, applicants.c.id == memberships.c.applicant_id
                )
                .join(
                    identities,
                    and_(
                        identities.c.applicant_id == applicants.c.id,
                        identities.c.linked_at.is_not(None),
                    ),
                )
                .outerjoin(
                    failures, failures.c.applicant_id == memberships.c.applicant_id
                )
            )
            .where(
                memberships.c.batch_id == batch_id,
                memberships.c.result.in_((RESULT_SELECTED, RESULT_NOT_SELECTED)),
                applicants.c.policy_version == version,
            )
        )
        statement = (
            upsert_statement(session, messages)
            .from_select(
                [
                    "batch_id",
                    "membership_id",
                    "applicant_id",
                    "identity_id",
                    "channel",
                    "text_key",
                    "policy_version",
                    "status",
                    "attempts",
                    "created_at",
                    "updated_at",
                ],
                source,
            )
            .on_conflict_do_nothing(index_elements=["membership_id", "identity_id"])
        )
        written += max(session.execute(statement).rowcount, 0)
    return written


def _row(row: object) -> MessageRow:
    return MessageRow(
        **{name: getattr(row, name) for name in MessageRow.__dataclass_fields__}
    )


def pending_messages(
    session: Session, batch_id: int, after_id: int = 0, limit: int = 500
) -> list[MessageRow]:
    """The next `limit` pending messages of the batch after `after_id`, by id
    (keyset paging: each page is one index range scan)."""
    rows = session.execute(
        select(messages)
        .where(
            messages.c.batch_id == batch_id,
            messages.c.status == MESSAGE_PENDING,
            messages.c.id > after_id,
        )
        .order_by(messages.c.id)
        .limit(limit)
    ).all()
    return [_row(row) for row in rows]


def messages_of(session: Session, applicant_id: int) -> list[MessageRow]:
    """Every announcement message to one applicant, oldest first."""
    rows = session.execute(
        select(messages)
        .where(messages.c.applicant_id == applicant_id)
        .order_by(messages.c.id)
    ).all()
    return [_row(row) for row in rows]


def mark_message(
    session: Session,
    message_id: int,
    status: str,
    now: datetime,
    expected: Sequence[str] = (MESSAGE_PENDING,),
    outbox_id: int | None = None,
) -> bool:
    """Move a message to `status` if it is still in one of `expected`; whether
    it moved (a message is moved once, whoever else tries)."""
    if status not in MESSAGE_STATUSES:
        raise ValueError(f"unknown message status {status!r}")
    values: dict[str, object] = {"status": status, "updated_at": now}
    if outbox_id is not None:
        values["outbox_id"] = outbox_id
    moved = session.execute(
        update(messages)
        .where(messages.c.id == message_id, messages.c.status.in_(tuple(expected)))
        .values(**values, attempts=messages.c.attempts + 1)
    )
    return bool(moved.rowcount == 1)


def message_counts(session: Session, batch_id: int) -> dict[str, int]:
    """Messages of the batch per status."""
    rows = session.execute(
        select(messages.c.status, func.count())
        .where(messages.c.batch_id == batch_id)
        .group_by(messages.c.status)
    ).all()
    return {str(status): int(n) for status, n in rows}
