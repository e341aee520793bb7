"""A turn's result in one statement on PostgreSQL.

`bot.gateway.results.Results.complete` stores a turn's result with five
statements: is another row of the conversation pending, the conversation's
new state (its lease kept or released), the row done, is an earlier reply of
the chat unsent, the first reply inserted (leased to this process when none
is). On PostgreSQL each is a round trip, about a tenth of a millisecond of
the gateway's CPU under load; its data-modifying `WITH` queries run the same
statements as one (its parts `more`, `kept`, `done`, `unsent` and `first`),
each step written only when the one before it wrote, in the same order of
locks (the conversation's row first, as the intake takes it). Their reads see the
transaction's writes so far, as the separate statements did; the statement's
own writes are not visible to its reads, and none of them reads what another
writes but through `RETURNING`.

SQLite has no such `WITH`; it keeps the five statements.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    and_,
    bindparam,
    case,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from bot.db import on_postgresql
from bot.direct_sql import DirectResult, DirectStatement, typed_parameter
from bot.gateway import claims
from bot.gateway.outcome import Outcome
from bot.messages.models import (
    INBOX_DONE,
    INBOX_PENDING,
    OUTBOX_PENDING,
    Conversation,
    InboxMessage,
    OutboxMessage,
)

inbox, conversations = InboxMessage.__table__, Conversation.__table__
outbox = OutboxMessage.__table__

FIRST_ROW_COLUMNS = (
    "conversation_id",
    "inbox_id",
    "seq",
    "body",
    "author",
    "agent_id",
    "ignore_opt_out",
    "priority",
    "status",
    "attempts",
    "last_error",
    "next_attempt_at",
    "created_at",
    "updated_at",
)
"""The first reply's columns given as parameters (`first_<column>`); the lease
columns are computed."""

_PRIORITY_DEFAULT = outbox.c.priority.default.arg

ANOTHER_PENDING_ROW = (
    select(inbox.c.id)
    .where(
        inbox.c.conversation_id == bindparam("conversation_id"),
        inbox.c.status == INBOX_PENDING,
        inbox.c.id != bindparam("inbox_id"),
    )
    .limit(1)
)
"""Another pending row of the conversation than the turn's."""
UNSENT_REPLY = (
    select(outbox.c.id)
    .where(
        outbox.c.conversation_id == bindparam("conversation_id"),
        outbox.c.status == OUTBOX_PENDING,
    )
    .limit(1)
)
"""A reply of the chat not sent yet."""
DONE_VALUES = {
    "status": INBOX_DONE,
    "attempts": inbox.c.attempts + 1,
    "processed_at": bindparam("now", type_=DateTime()),
    "last_error": bindparam("note", type_=inbox.c.last_error.type),
}
"""The turn's row done (parameters now, note)."""


def _statement(with_first_row: bool) -> Select:
    now = bindparam("now", type_=DateTime())
    more = ANOTHER_PENDING_ROW.cte("more")
    has_more = exists(more.select())
    kept = (
        update(conversations)
        .where(claims.HOLDS)
        .values(
            state=bindparam("new_state", type_=conversations.c.state.type),
            opted_out=bindparam("new_opted_out", type_=conversations.c.opted_out.type),
            not_before=None,
            lease_owner=case((has_more, conversations.c.lease_owner), else_=None),
            lease_until=case(
                (has_more, typed_parameter("until", DateTime())), else_=None
            ),
            lease_token=case((has_more, conversations.c.lease_token), else_=None),
            updated_at=now,
        )
        .returning(conversations.c.id)
        .cte("kept")
    )
    done = (
        update(inbox)
        .where(
            inbox.c.id == bindparam("inbox_id"),
            inbox.c.status == INBOX_PENDING,
            exists(kept.select()),
        )
        .values(DONE_VALUES)
        .returning(inbox.c.id)
        .cte("done")
    )
    columns = [
        has_more.label("more"),
        exists(kept.select()).label("kept"),
        exists(done.select()).label("done"),
    ]
    if with_first_row:
        first = _first_row(done).cte("first")
        columns += [
            select(first.c.id).scalar_subquery().label("first_id"),
            select(first.c.leased).scalar_subquery().label("leased"),
        ]
    return select(*columns)


def _first_row(done: Any) -> Any:
    """The turn's first reply, inserted once the row is done; leased to this
    process (`adopt`) unless an earlier reply of the chat is unsent."""
    unsent = UNSENT_REPLY.cte("unsent")
    leased = and_(
        bindparam("adopt", type_=Boolean()), ~exists(unsent.select())
    ).self_group()

    def when_leased(value: Any) -> Any:
        return case((leased, value), else_=None)

    values = [
        typed_parameter(f"first_{name}", outbox.c[name].type)
        for name in FIRST_ROW_COLUMNS
    ]
    lease = [
        when_leased(typed_parameter("owner", outbox.c.lease_owner.type)),
        when_leased(typed_parameter("lease_until", DateTime())),
        when_leased(typed_parameter("lease_token", outbox.c.lease_token.type)),
        when_leased(typed_parameter("now", DateTime())),
    ]
    names = [
        *FIRST_ROW_COLUMNS,
        "lease_owner",
        "lease_until",
        "lease_token",
        "send_started_at",
    ]
    return (
        insert(outbox)
        .from_select(names, select(*values, *lease).where(exists(done.select())))
        .returning(outbox.c.id, outbox.c.lease_owner.isnot(None).label("leased"))
    )


COMPLETE = DirectStatement(_statement(with_first_row=False))
"""The row done with the conversation's new state (no reply inserted)."""
COMPLETE_WITH_FIRST_ROW = DirectStatement(_statement(with_first_row=True))
"""The same, and the turn's first reply inserted (leased when `adopt`)."""


def applies(session: Session, outcome: Outcome) -> bool:
    """Whether `outcome` is stored with one statement: on PostgreSQL, when it
    cancels no ticket and flushes no held answers (those come between the row
    done and its replies: the five statements store them)."""
    return (
        outcome.cancel_ticket is None
        and outcome.flush is None
        and on_postgresql(session)
    )


def first_row_parameters(
    row: dict[str, Any],
    adopt: bool,
    owner: str | None,
    until: datetime | None,
    token: int | None,
) -> dict[str, Any]:
    """The parameters of `COMPLETE_WITH_FIRST_ROW` for the reply `row` (the
    values of `bot.gateway.results._outbox_values`)."""
    given = {f"first_{name}": row.get(name) for name in FIRST_ROW_COLUMNS}
    if given["first_priority"] is None:
        given["first_priority"] = _PRIORITY_DEFAULT
    given.update(adopt=adopt, owner=owner, lease_until=until, lease_token=token)
    return given


def run(session: Session, parameters: dict[str, Any], with_first_row: bool) -> Any:
    """The statement's one row: more, kept, done (and first_id, leased)."""
    statement = COMPLETE_WITH_FIRST_ROW if with_first_row else COMPLETE
    result: DirectResult = statement.execute(session, parameters)
    return result.one()
