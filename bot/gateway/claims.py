"""Conversation leases: claim conversations with pending inbox rows, read the
next row under the claim, and release them.

A worker claims a conversation with pending inbox rows by taking its lease with a
conditional UPDATE (only if the lease is free, expired, or held by a process whose
heartbeat is stale: `bot.leases`; the row count says who won). Each claim writes
a new fencing token, and every write guarded by the lease names it (`holds`), so
a process that was paused past its heartbeat timeout cannot commit after a
takeover. On PostgreSQL the candidates are picked with `FOR UPDATE SKIP LOCKED`,
so workers in several processes do not even wait for each other. The methods
block (run them in a thread).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import DateTime, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from bot import leases
from bot.channels.base import InboundMessage
from bot.db import on_postgresql, utcnow
from bot.direct_sql import DirectStatement
from bot.gateway import burst
from bot.gateway.options import GatewayOptions
from bot.gateway.outcome import Held, PendingMessage
from bot.handoff.tickets import active_ticket_id, ticket_for_message
from bot.messages.events import internal_event_name
from bot.messages.models import INBOX_PENDING, Conversation, InboxMessage

conversations, inbox = Conversation.__table__, InboxMessage.__table__


def _param(name: str) -> Any:
    return bindparam(name, type_=DateTime())


HOLDS = and_(
    conversations.c.id == bindparam("conversation_id"),
    conversations.c.lease_owner == bindparam("me"),
    conversations.c.lease_token == bindparam("token"),
)
"""SQL: the conversation (parameter conversation_id) is still leased by this
claim (parameters me, token): the fence; `ConversationClaims.fence` gives them."""


def _lease_free() -> Any:
    return leases.lease_free(
        conversations.c.lease_owner,
        conversations.c.lease_until,
        _param("now"),
        _param("stale"),
        bindparam("me"),
    )


def _oldest_pending() -> Any:
    """SQL: the id of the conversation's oldest pending row."""
    return (
        select(func.min(inbox.c.id))
        .where(
            inbox.c.conversation_id == conversations.c.id,
            inbox.c.status == INBOX_PENDING,
        )
        .scalar_subquery()
    )


def _candidates(lock: bool, with_oldest: bool = False) -> Any:
    """Up to `limit` conversations with pending rows whose lease is free, the
    longest waiting first (`with_oldest`: their oldest pending row's id too, as
    `oldest`, computed once for both)."""
    oldest_pending: Any = _oldest_pending()
    columns = [conversations.c.id]
    if with_oldest:
        oldest_pending = oldest_pending.label("oldest")
        columns.append(oldest_pending)
    candidates = (
        select(*columns)
        .where(
            conversations.c.id.in_(
                select(inbox.c.conversation_id).where(inbox.c.status == INBOX_PENDING)
            ),
            _lease_free(),
            or_(
                conversations.c.not_before.is_(None),
                conversations.c.not_before <= _param("now"),
            ),
        )
        .order_by(oldest_pending)
        .limit(bindparam("limit"))
    )
    return (
        candidates.with_for_update(skip_locked=True, of=conversations)
        if lock
        else candidates
    )


CANDIDATES = {
    False: DirectStatement(_candidates(False)),
    True: DirectStatement(_candidates(True)),
}


def _claim_in_one() -> Any:
    """PostgreSQL: `CANDIDATES` (locked, skipping rows another claim locks),
    `TAKE` and `TAKEN` as one statement (a data-modifying WITH query), the
    taken conversations longest waiting first."""
    candidates = _candidates(True, with_oldest=True).cte("candidates")
    taken = (
        update(conversations)
        .where(conversations.c.id.in_(select(candidates.c.id)), _lease_free())
        .values(
            lease_owner=bindparam("me"),
            lease_until=_param("until"),
            lease_token=bindparam("token"),
            updated_at=_param("now"),
        )
        .returning(conversations.c.id)
        .cte("taken")
    )
    return (
        select(taken.c.id)
        .join(candidates, candidates.c.id == taken.c.id)
        .order_by(candidates.c.oldest)
    )


CLAIM_IN_ONE = DirectStatement(_claim_in_one())
TAKE = DirectStatement(
    update(conversations)
    .where(conversations.c.id.in_(bindparam("ids", expanding=True)), _lease_free())
    .values(
        lease_owner=bindparam("me"),
        lease_until=_param("until"),
        lease_token=bindparam("token"),
    )
)
TAKEN = DirectStatement(
    select(conversations.c.id).where(
        conversations.c.id.in_(bindparam("ids", expanding=True)),
        conversations.c.lease_owner == bindparam("me"),
        conversations.c.lease_token == bindparam("token"),
    )
)
_HELD_COLUMNS = (
    conversations.c.address,
    conversations.c.pseudonym,
    conversations.c.simulated,
    conversations.c.opted_out,
    conversations.c.state,
    active_ticket_id(conversations.c.id).label("ticket_id"),
)
_ROW_COLUMNS = (
    inbox.c.id,
    inbox.c.attempts,
    inbox.c.channel,
    inbox.c.provider_id,
    inbox.c.text,
    inbox.c.payload,
    inbox.c.event,
    inbox.c.user_name,
    inbox.c.received_at,
)
NEXT_ROWS = 2
"""Pending rows read with a conversation: the next one tells whether a burst
goes on."""
HELD_NEXT_ROWS = DirectStatement(
    select(*_HELD_COLUMNS, *_ROW_COLUMNS)
    .select_from(
        conversations.outerjoin(
            inbox,
            and_(
                inbox.c.conversation_id == conversations.c.id,
                inbox.c.status == INBOX_PENDING,
            ),
        )
    )
    .where(HOLDS)
    .order_by(inbox.c.id)
    .limit(NEXT_ROWS)
)
"""The held conversation with its two oldest pending rows, in one statement:
no row when the claim does not hold it, one without a message (`id` None)
when nothing is pending."""


def _claimed_next_rows() -> Any:
    """`HELD_NEXT_ROWS` for every conversation a claim just took (parameters
    ids, and the same list as pending_of), in one statement: each held one's
    id with its two oldest pending rows (`id` None when none is)."""
    ranked = (
        select(
            *_ROW_COLUMNS,
            inbox.c.conversation_id,
            func.row_number()
            .over(partition_by=inbox.c.conversation_id, order_by=inbox.c.id)
            .label("position"),
        )
        .where(
            inbox.c.status == INBOX_PENDING,
            inbox.c.conversation_id.in_(bindparam("pending_of", expanding=True)),
        )
        .subquery("ranked")
    )
    return (
        select(
            conversations.c.id.label("conversation_id"),
            *_HELD_COLUMNS,
            *(ranked.c[column.key] for column in _ROW_COLUMNS),
        )
        .select_from(
            conversations.outerjoin(
                ranked,
                and_(
                    ranked.c.conversation_id == conversations.c.id,
                    ranked.c.position <= NEXT_ROWS,
                ),
            )
        )
        .where(
            conversations.c.id.in_(bindparam("ids", expanding=True)),
            conversations.c.lease_owner == bindparam("me"),
            conversations.c.lease_token == bindparam("token"),
        )
        .order_by(conversations.c.id, ranked.c.id)
    )


CLAIMED_NEXT_ROWS = DirectStatement(_claimed_next_rows())
RELEASE = DirectStatement(
    update(conversations)
    .where(HOLDS)
    .values(lease_owner=None, lease_until=None, lease_token=None)
)
"""The statements are built once with bound parameters (building a statement
and its cache key costs more CPU than running it), those of every message run
past SQLAlchemy's per-call work (`bot.direct_sql`)."""


class ConversationClaims:
    """The lease SQL of the conversation worker, for one process (`owner`)."""

    def __init__(
        self, sessions: Callable[[], Session], owner: str, options: GatewayOptions
    ) -> None:
        self._sessions = sessions
        self._owner = owner
        self._options = options
        self._tokens = leases.Tokens()
        self.in_one_statement = True
        """On PostgreSQL, claim with `CLAIM_IN_ONE` (False: the three
        statements SQLite runs, for comparison)."""

    def fence(self, conversation_id: int, token: int | None) -> dict[str, Any]:
        """The parameters of `HOLDS` for this process's claim with `token`."""
        return {"conversation_id": conversation_id, "me": self._owner, "token": token}

    def claim(self, limit: int) -> list[Held]:
        """Take the lease of up to `limit` conversations that have pending rows."""
        now = utcnow()
        token = self._tokens.new()
        params = {
            "now": now,
            "stale": leases.stale_before(now, self._options.heartbeat_timeout),
            "me": self._owner,
        }
        with self._sessions() as session, session.begin():
            lock = on_postgresql(session)
            if lock and self.in_one_statement:
                until = now + timedelta(seconds=self._options.lease_seconds)
                taken_ids = [
                    int(conversation_id)
                    for conversation_id in CLAIM_IN_ONE.execute(
                        session,
                        {**params, "limit": limit, "until": until, "token": token},
                    ).scalars()
                ]
                return self._read_all(session, taken_ids, token)
            ids = [
                int(conversation_id)
                for conversation_id in CANDIDATES[lock]
                .execute(session, {**params, "limit": limit})
                .scalars()
            ]
            if not ids:
                return []
            until = now + timedelta(seconds=self._options.lease_seconds)
            TAKE.execute(
                session, {**params, "ids": ids, "until": until, "token": token}
            )
            taken = set(
                TAKEN.execute(
                    session, {"ids": ids, "me": self._owner, "token": token}
                ).scalars()
            )
            return self._read_all(
                session,
                [i for i in ids if i in taken],
                token,  # longest waiting first
            )

    def next_pending(self, held: Held) -> PendingMessage | None:
        """The claimed conversation's oldest pending row; None when the claim
        was lost, or when no row is pending: then the conversation is released
        in the same transaction."""
        with self._sessions() as session:
            pending = self._read(session, held)
            if pending is None:
                self._release(session, held)
                session.commit()
            return pending

    def _read_all(self, session: Session, ids: list[int], token: int) -> list[Held]:
        """The conversations just claimed (`ids`, in the claim's order) with
        their oldest pending rows, read in one statement whatever their number."""
        if not ids:
            return []
        found: dict[int, list[Any]] = {}
        for row in CLAIMED_NEXT_ROWS.execute(
            session, {"ids": ids, "pending_of": ids, "me": self._owner, "token": token}
        ):
            found.setdefault(int(row.conversation_id), []).append(row)
        return [
            Held(i, token, self._pending(session, i, token, found.get(i, [])))
            for i in ids
        ]

    def _read(self, session: Session, held: Held) -> PendingMessage | None:
        """The conversation's oldest pending row while the claim holds it."""
        rows = HELD_NEXT_ROWS.execute(
            session, self.fence(held.conversation_id, held.token)
        ).all()
        return self._pending(session, held.conversation_id, held.token, rows)

    def _pending(
        self, session: Session, conversation_id: int, token: int, rows: list[Any]
    ) -> PendingMessage | None:
        """A held conversation's oldest pending row from its `HELD_NEXT_ROWS`
        (None when no row is pending, or the claim does not hold it)."""
        if not rows or rows[0].id is None:
            return None
        conversation = rows[0]
        messages = [
            InboundMessage(
                channel=row.channel,
                provider_id=row.provider_id,
                address=conversation.address,
                text=row.text,
                payload=row.payload,
                event=row.event,
                simulated=conversation.simulated,
                user_name=row.user_name,
            )
            for row in rows
        ]
        following = None
        if len(rows) > 1 and internal_event_name(rows[1].event) is None:
            following = messages[1]
        row = rows[0]
        return PendingMessage(
            conversation_id=conversation_id,
            inbox_id=row.id,
            attempts=row.attempts,
            pseudonym=conversation.pseudonym,
            simulated=conversation.simulated,
            opted_out=conversation.opted_out,
            state=dict(conversation.state or {}),
            message=messages[0],
            ticket=None  # one statement less for the common case: no ticket
            if conversation.ticket_id is None
            else ticket_for_message(session, conversation_id, row.id),
            lease_token=token,
            stale=burst.is_stale(row.received_at, utcnow(), self._options.stale_after),
            following=following,
        )

    def due_now(self, conversation_ids: list[int]) -> None:
        """Make these conversations due at once (those not leased), e.g. when
        Rasa, which they waited for, is back."""
        with self._sessions() as session, session.begin():
            session.execute(
                update(Conversation)
                .where(
                    Conversation.id.in_(conversation_ids),
                    Conversation.lease_owner.is_(None),
                    Conversation.not_before.is_not(None),
                )
                .values(not_before=None)
                .execution_options(synchronize_session=False)
            )

    def release(self, held: Held) -> None:
        """Give the conversation back (only while this claim holds it)."""
        with self._sessions() as session, session.begin():
            self._release(session, held)

    def _release(self, session: Session, held: Held) -> None:
        RELEASE.execute(session, self.fence(held.conversation_id, held.token))
