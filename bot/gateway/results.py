"""Commit what processing a message produced: the row done, failed or
postponed, with its replies in the outbox, in one transaction each.

Every write names the claim's fencing token (`bot.gateway.claims.HOLDS`), so
only the current lease holder's writes change anything; a late one is dropped.
Answers held during a stale burst (`bot.gateway.burst`) go out before anything
else of the transaction. The methods block (run them in a thread).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from bot.channels.base import Channel
from bot.db import utcnow
from bot.direct_sql import DirectStatement
from bot.gateway import burst, claims, result_statement
from bot.gateway.claims import ConversationClaims
from bot.gateway.options import GatewayOptions
from bot.gateway.outcome import Adoption, Flush, Outcome, PendingMessage, Stored
from bot.group_commit import AbandonError
from bot.handoff.routing import cancel_ticket
from bot.insert_ignoring import insert_ignoring_conflict
from bot.loops import describe_error
from bot.messages.models import (
    AUTHOR_BOT,
    INBOX_FAILED,
    INBOX_PENDING,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    Conversation,
    InboxMessage,
    OutboxMessage,
)

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500


def _outbox_values(
    pending: PendingMessage,
    seq: int,
    body: dict[str, Any],
    ignore_opt_out: bool,
    now: datetime,
    outcome: Outcome | None = None,
) -> dict[str, Any]:
    """An outbox row's values; `outcome` gives its author (default: the bot)."""
    values = {
        "conversation_id": pending.conversation_id,
        "inbox_id": pending.inbox_id,
        "seq": seq,
        "body": body,
        "author": AUTHOR_BOT if outcome is None else outcome.author,
        "agent_id": None if outcome is None else outcome.agent_id,
        "ignore_opt_out": ignore_opt_out,
        "status": OUTBOX_PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    if outcome is not None and outcome.withheld:
        values.update(status=OUTBOX_FAILED, last_error=outcome.withheld)
    return values


def store_flush(
    session: Session, pending: PendingMessage, flush: Flush, now: datetime
) -> None:
    """Store held answers (before anything else of this transaction)."""
    rows = []
    for seq, body in enumerate(flush.bodies):
        values = _outbox_values(pending, seq, body, False, now)
        values["inbox_id"] = flush.inbox_id
        rows.append(values)
    insert_rows(session, rows)


def insert_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert outbox rows with one Core statement (no ORM objects)."""
    INSERT_OUTBOX.execute_rows(session, rows)


def _sendable(row: dict[str, Any], outcome: Outcome) -> bool:
    """Whether the claim would send this new row (not withheld, and not held
    back by an opt-out it is not exempt from)."""
    return bool(
        row["status"] == OUTBOX_PENDING
        and (not outcome.opted_out or row["ignore_opt_out"])
    )


def _adopt_first(
    session: Session,
    pending: PendingMessage,
    rows: list[dict[str, Any]],
    adoption: Adoption,
    now: datetime,
) -> list[dict[str, Any]]:
    """Insert the turn's first new reply leased to this process, its send
    marked as started (as the outbox's claim does), when no earlier reply of
    the chat is unsent (replies of one chat go out in order); the rows left to
    insert. A leased row wakes no other process (the insert trigger skips it)."""
    if (
        UNSENT.execute(session, {"conversation_id": pending.conversation_id}).first()
        is not None
    ):
        return rows
    first = {
        **rows[0],
        "lease_owner": adoption.owner,
        "lease_until": adoption.until,
        "lease_token": adoption.token,
        "send_started_at": now,
    }
    adoption.outbox_id = INSERT_OUTBOX.execute(session, first).inserted_id
    adoption.seq, adoption.started_at = int(first["seq"]), now
    return rows[1:]


inbox, conversations = InboxMessage.__table__, Conversation.__table__
outbox = OutboxMessage.__table__
UNSENT = DirectStatement(result_statement.UNSENT_REPLY)
"""A reply of the chat not sent yet."""

INSERT_OUTBOX = DirectStatement(
    insert(OutboxMessage.__table__), values_from_parameters=True
)
MARK_DONE = DirectStatement(
    update(inbox)
    .where(inbox.c.id == bindparam("inbox_id"), inbox.c.status == INBOX_PENDING)
    .values(result_statement.DONE_VALUES)
)
ANOTHER_PENDING = DirectStatement(result_statement.ANOTHER_PENDING_ROW)
_NEW_STATE = {
    "state": bindparam("new_state", type_=conversations.c.state.type),
    "opted_out": bindparam("new_opted_out", type_=conversations.c.opted_out.type),
    "not_before": None,
}
KEEP = DirectStatement(
    update(conversations)
    .where(claims.HOLDS)
    .values(**_NEW_STATE, lease_until=bindparam("until", type_=DateTime()))
)
"""The turn's new state; the lease goes on (another row is pending)."""
RELEASE_WITH_STATE = DirectStatement(
    update(conversations)
    .where(claims.HOLDS)
    .values(**_NEW_STATE, lease_owner=None, lease_until=None, lease_token=None)
)
"""The turn's new state, and the conversation released (nothing else pending)."""


class Results:
    """The worker's transactions for one process."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        channels: Mapping[str, Channel],
        claims: ConversationClaims,
        options: GatewayOptions,
    ) -> None:
        self._sessions = sessions
        self._channels = channels
        self._claims = claims
        self._options = options

    def complete(
        self,
        session: Session,
        pending: PendingMessage,
        outcome: Outcome,
        adoption: Adoption | None = None,
    ) -> Stored:
        """Mark the row done with the new state and the outcome's replies (held
        answers first), in the caller's transaction (a `bot.group_commit` job).
        When no other row of the conversation is pending, its lease is released
        in the same transaction (`Stored.RELEASED`: no read and no transaction
        more to find that out). When the lease was lost or the row is no longer
        pending, nothing may be written: `AbandonError(Stored.LOST)`. With
        `adoption`, the first new reply is leased to this process when it is
        the oldest unsent one of the chat (`adoption.outbox_id`). On
        PostgreSQL the same writes are one statement
        (`bot.gateway.result_statement`)."""
        now = utcnow()
        if adoption is not None:
            adoption.outbox_id = None  # a batch may run this job again
        if result_statement.applies(session, outcome):
            return self._complete_in_one(session, pending, outcome, adoption, now)
        # The conversation's row is locked first, as the intake locks it before
        # inserting: a message stored at that moment (its insert waits for
        # this row's update) cannot deadlock with this transaction.
        more = ANOTHER_PENDING.execute(
            session,
            {"conversation_id": pending.conversation_id, "inbox_id": pending.inbox_id},
        ).first()
        fence = self._claims.fence(pending.conversation_id, pending.lease_token)
        kept = (KEEP if more is not None else RELEASE_WITH_STATE).execute(
            session,
            {
                **fence,
                "new_state": outcome.state,
                "new_opted_out": outcome.opted_out,
                "until": now + timedelta(seconds=self._options.lease_seconds),
            },
        ).rowcount == 1
        if not kept:
            raise AbandonError(Stored.LOST)
        done = MARK_DONE.execute(
            session,
            {"inbox_id": pending.inbox_id, "now": now, "note": outcome.note},
        )
        if done.rowcount != 1:
            raise AbandonError(Stored.LOST)
        if outcome.cancel_ticket is not None:
            cancel_ticket(session, pending.conversation_id, outcome.cancel_ticket, now)
        if outcome.flush is not None:
            store_flush(session, pending, outcome.flush, now)
        rows = [
            _outbox_values(pending, seq, body, seq < outcome.exempt, now, outcome)
            for seq, body in enumerate(outcome.bodies)
            if seq >= outcome.stored
        ]
        if adoption is not None and rows and _sendable(rows[0], outcome):
            rows = _adopt_first(session, pending, rows, adoption, now)
        insert_rows(session, rows)
        return Stored.KEPT if more is not None else Stored.RELEASED

    def _complete_in_one(
        self,
        session: Session,
        pending: PendingMessage,
        outcome: Outcome,
        adoption: Adoption | None,
        now: datetime,
    ) -> Stored:
        """`complete` in one statement (`bot.gateway.result_statement`), with
        the replies after the first inserted after it; PostgreSQL only."""
        rows = [
            _outbox_values(pending, seq, body, seq < outcome.exempt, now, outcome)
            for seq, body in enumerate(outcome.bodies)
            if seq >= outcome.stored
        ]
        parameters: dict[str, Any] = {
            **self._claims.fence(pending.conversation_id, pending.lease_token),
            "inbox_id": pending.inbox_id,
            "new_state": outcome.state,
            "new_opted_out": outcome.opted_out,
            "until": now + timedelta(seconds=self._options.lease_seconds),
            "now": now,
            "note": outcome.note,
        }
        if rows:
            adopt = adoption is not None and _sendable(rows[0], outcome)
            parameters.update(
                result_statement.first_row_parameters(
                    rows[0],
                    adopt,
                    adoption.owner if adoption is not None else None,
                    adoption.until if adoption is not None else None,
                    adoption.token if adoption is not None else None,
                )
            )
        result = result_statement.run(session, parameters, bool(rows))
        if not (result.kept and result.done):
            raise AbandonError(Stored.LOST)
        if rows and result.leased:
            assert adoption is not None
            adoption.outbox_id = int(result.first_id)
            adoption.seq, adoption.started_at = int(rows[0]["seq"]), now
        insert_rows(session, rows[1:])
        return Stored.KEPT if result.more else Stored.RELEASED

    def store_local(self, pending: PendingMessage, outcome: Outcome) -> None:
        """Store the local bodies before the Rasa turn (idempotent: a retry of
        the same message stores nothing twice)."""
        now = utcnow()
        with self._sessions() as session, session.begin():
            for seq, body in enumerate(outcome.bodies):
                insert_ignoring_conflict(
                    session,
                    OutboxMessage.__table__,
                    _outbox_values(
                        pending, seq, body, seq < outcome.exempt, now, outcome
                    ),
                )

    def fail(
        self,
        pending: PendingMessage,
        error: str,
        bodies: list[dict[str, Any]],
        first_seq: int,
    ) -> None:
        """Mark the row failed and store `bodies` (an apology) after `first_seq`
        and after any reply of the row stored by an earlier attempt, held answers
        before them; nothing when the lease was lost (the fence is checked
        first)."""
        now = utcnow()
        flush = self.flush(pending)
        values: dict[str, Any] = {"not_before": None}
        if flush is not None:
            values["state"] = flush.state
        with self._sessions() as session, session.begin():
            if not self._update_held(session, pending, values):
                log.warning(
                    "conversation %s inbox %s: lease lost, not failed",
                    pending.conversation_id,
                    pending.inbox_id,
                )
                return
            if bodies:
                last = session.execute(
                    select(func.max(OutboxMessage.seq)).where(
                        OutboxMessage.inbox_id == pending.inbox_id
                    )
                ).scalar_one_or_none()
                if last is not None:
                    first_seq = max(first_seq, int(last) + 1)
            failed = session.execute(
                update(InboxMessage)
                .where(
                    InboxMessage.id == pending.inbox_id,
                    InboxMessage.status == INBOX_PENDING,
                )
                .values(
                    status=INBOX_FAILED,
                    attempts=InboxMessage.attempts + 1,
                    processed_at=now,
                    last_error=error[:MAX_ERROR_LENGTH],
                )
                .execution_options(synchronize_session=False)
            )
            if failed.rowcount != 1:
                if flush is not None:  # keep them held: this row is not ours to end
                    session.rollback()
                return
            if flush is not None:
                store_flush(session, pending, flush, now)
            insert_rows(
                session,
                [
                    _outbox_values(pending, first_seq + index, body, False, now)
                    for index, body in enumerate(bodies)
                ],
            )

    def postpone(
        self, pending: PendingMessage, error: str, delay: float, count: bool
    ) -> None:
        """Release the conversation until `delay` from now and note the error on
        the row; held answers go out now (they must not wait for this row).
        Nothing when the lease was lost (the fence is checked first)."""
        now = utcnow()
        values: dict[str, Any] = {"last_error": error[:MAX_ERROR_LENGTH]}
        if count:
            values["attempts"] = InboxMessage.attempts + 1
        flush = self.flush(pending)
        released: dict[str, Any] = {
            "not_before": now + timedelta(seconds=delay),
            "lease_owner": None,
            "lease_until": None,
            "lease_token": None,
        }
        if flush is not None:
            released["state"] = flush.state
        with self._sessions() as session, session.begin():
            if not self._update_held(session, pending, released):
                return
            if flush is not None:
                store_flush(session, pending, flush, now)
            session.execute(
                update(InboxMessage)
                .where(
                    InboxMessage.id == pending.inbox_id,
                    InboxMessage.status == INBOX_PENDING,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def flush(self, pending: PendingMessage, buttons: bool = True) -> Flush | None:
        """The held answers of the conversation as bodies to send now, or None.
        A channel that cannot render them drops them (logged)."""
        turns = burst.held_turns(pending.state)
        inbox_id = burst.held_inbox_id(pending.state)
        channel = self._channels.get(pending.message.channel)
        if not turns or inbox_id is None or channel is None:
            return None
        state = burst.without_held(pending.state)
        try:
            rendered = channel.render(burst.combine(turns, buttons), state)
        except Exception as exc:
            log.error(
                "conversation %s: held answers not rendered: %s",
                pending.conversation_id,
                describe_error(exc),
            )
            return Flush(inbox_id, [], state)
        return Flush(inbox_id, list(rendered.bodies), dict(rendered.state))

    def _update_held(
        self, session: Session, pending: PendingMessage, values: dict[str, Any]
    ) -> bool:
        """Update the conversation while this claim still holds it (the fence);
        False when it does not."""
        kept = session.execute(
            update(conversations).where(claims.HOLDS).values(**values),
            self._claims.fence(pending.conversation_id, pending.lease_token),
        )
        return bool(kept.rowcount == 1)
