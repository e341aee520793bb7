"""Delivery statuses of sent replies (Twilio's status callbacks).

`record_status` stores a provider's status on the reply with that provider id.
A status that arrives before the sender stored the id is kept in the database
(`keep_early_status`, not one process's memory) and applied by whichever gateway
process stores the id (`apply_early_statuses`). Each side commits its own write
before it reads the other's (the callback: kept status, then look for the reply;
the sender: the id, then look for kept statuses), so at least one of them sees
both, on SQLite and on PostgreSQL (READ COMMITTED) alike; applying twice is
harmless. A bulk row's final status moves its announcement row in the same
transaction (`bot.selection.delivery.follow_outbox_status`).
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from bot.db import on_postgresql, reading, utcnow
from bot.direct_sql import DirectStatement
from bot.messages.models import (
    OUTBOX_DELIVERED,
    OUTBOX_UNDELIVERED,
    PRIORITY_BULK,
    EarlyDeliveryStatus,
    OutboxMessage,
)
from bot.selection.delivery import follow_outbox_status

DELIVERED_STATUSES = {"delivered", "read"}
UNDELIVERED_STATUSES = {"undelivered", "failed", "canceled"}
FINAL_STATUSES = DELIVERED_STATUSES | UNDELIVERED_STATUSES
EARLY_STATUS_TTL = timedelta(days=7)
"""Early delivery statuses whose message never shows up are forgotten then."""


_outbox = OutboxMessage.__table__
STATUS_ROW = DirectStatement(
    select(
        _outbox.c.id, _outbox.c.status, _outbox.c.delivery_status, _outbox.c.priority
    )
    .where(_outbox.c.provider_message_id == bindparam("provider_message_id"))
    .with_for_update()
)
"""The sent row with a provider id, locked until the commit (built once: two or
three callbacks come for every SMS)."""
SET_STATUS = DirectStatement(
    update(_outbox)
    .where(_outbox.c.id == bindparam("row_id"))
    .values(
        delivery_status=bindparam("delivery_status"),
        error_code=bindparam("error_code"),
        status=bindparam("new_status"),
        updated_at=bindparam("now"),
    )
)


def _new_outbox_status(status: str) -> str | None:
    """The outbox status a delivery status moves its row to (None: unchanged)."""
    if status in DELIVERED_STATUSES:
        return OUTBOX_DELIVERED
    if status in UNDELIVERED_STATUSES:
        return OUTBOX_UNDELIVERED
    return None


@cache
def _set_status_by_provider_id(
    new_status: str | None, returning: bool
) -> DirectStatement:
    """The one UPDATE of the usual callback (see `record_status`), built once
    per outbox status it sets and per dialect kind."""
    values: dict[str, Any] = {
        "delivery_status": bindparam("new_delivery_status"),
        "error_code": bindparam("new_error_code"),
        "updated_at": bindparam("now"),
    }
    statement = update(_outbox).where(
        _outbox.c.provider_message_id == bindparam("provider_id")
    )
    if new_status is None:  # an intermediate status never overwrites a final one
        statement = statement.where(
            or_(
                _outbox.c.delivery_status.is_(None),
                _outbox.c.delivery_status.not_in(sorted(FINAL_STATUSES)),
            )
        )
    else:
        values["status"] = new_status
        if returning:  # a bulk row's announcement follows: its id is needed
            statement = statement.returning(_outbox.c.id, _outbox.c.priority)
        else:
            statement = statement.where(_outbox.c.priority != PRIORITY_BULK)
    return DirectStatement(statement.values(**values))


def _record_in_one_statement(
    session: Session, provider_message_id: str, status: str, error_code: str | None
) -> bool:
    """The usual callback as one UPDATE; False when it changed nothing (no such
    row yet, a late intermediate status after a final one, or on SQLite, which
    has no RETURNING here, a bulk row's final status): the caller then reads
    the row as `record_status` always did."""
    new_status = _new_outbox_status(status)
    returning = on_postgresql(session)
    now = utcnow()
    result = _set_status_by_provider_id(new_status, returning).execute(
        session,
        {
            "provider_id": provider_message_id,
            "new_delivery_status": status,
            "new_error_code": error_code or None,
            "now": now,
        },
    )
    if new_status is None or not returning:
        return bool(result.rowcount)
    changed = result.all()
    for row in changed:
        if row.priority == PRIORITY_BULK:
            follow_outbox_status(session, row.id, new_status, now)
    return bool(changed)


def record_status(
    session: Session,
    provider_message_id: str,
    status: str,
    error_code: str | None = None,
) -> bool:
    """Record a provider's delivery status for a sent row (idempotent); the caller
    commits. A late intermediate status never overwrites a final one. False when no
    row has this provider message id.

    Two or three callbacks come for every SMS, so the usual one is a single
    UPDATE; the rare rest (no row yet, an intermediate status after a final
    one, a bulk row's final status on SQLite) reads the row first, locked."""
    status = status.strip().lower()
    if _record_in_one_statement(session, provider_message_id, status, error_code):
        return True
    row = STATUS_ROW.execute(
        session, {"provider_message_id": provider_message_id}
    ).one_or_none()
    if row is None:
        return False
    if row.delivery_status in FINAL_STATUSES and status not in FINAL_STATUSES:
        return True
    new_status = _new_outbox_status(status) or row.status
    now = utcnow()
    SET_STATUS.execute(
        session,
        {
            "row_id": row.id,
            "delivery_status": status,
            "error_code": error_code or None,
            "new_status": new_status,
            "now": now,
        },
    )
    if row.priority == PRIORITY_BULK:  # an announcement's row follows it
        follow_outbox_status(session, row.id, new_status, now)
    return True


_early = EarlyDeliveryStatus.__table__
KEPT = DirectStatement(
    select(_early.c.id, _early.c.status, _early.c.error_code)
    .where(_early.c.provider_message_id == bindparam("provider_message_id"))
    .order_by(_early.c.id)
)
"""The kept statuses of one provider id, in arrival order (built once: the
sender looks after every SMS it stores)."""
KEEP = DirectStatement(insert(_early), values_from_parameters=True)
FORGET_OLD = DirectStatement(
    delete(_early).where(_early.c.received_at < bindparam("before"))
)
FORGET = DirectStatement(
    delete(_early).where(_early.c.id.in_(bindparam("ids", expanding=True)))
)


def keep_early_status(
    session: Session,
    provider_message_id: str,
    status: str,
    error_code: str | None = None,
) -> None:
    """Keep a delivery status whose message is not stored yet (the caller commits,
    then looks for the message again); forget kept ones past their time."""
    now = utcnow()
    FORGET_OLD.execute(session, {"before": now - EARLY_STATUS_TTL})
    KEEP.execute(
        session,
        {
            "provider_message_id": provider_message_id,
            "status": status[:32],
            "error_code": (error_code or None) and str(error_code)[:32],
            "received_at": now,
        },
    )


def apply_early_statuses(session: Session, provider_message_id: str) -> int:
    """Apply the kept statuses of this id, in arrival order, to its stored row and
    forget them (idempotent); the caller commits. How many were applied. The
    look is a read outside a transaction when none is begun (the send's
    follow-up after its commit: nearly always nothing kept, then no `BEGIN`
    and no `COMMIT` either)."""
    with reading(session.connection()):
        kept = KEPT.execute(session, {"provider_message_id": provider_message_id}).all()
    if not kept:  # nearly always: one prebuilt statement, no ORM
        return 0
    applied = [
        early.id
        for early in kept
        if record_status(session, provider_message_id, early.status, early.error_code)
    ]
    if applied:
        FORGET.execute(session, {"ids": applied})
    return len(applied)
