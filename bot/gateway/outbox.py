"""Send stored replies: in order per conversation, with retries, backoff and leases.

Only the oldest pending row of a conversation is due, so replies arrive in the
order they were stored. A sender claims due rows by taking their lease with a
conditional UPDATE (and, on PostgreSQL, picks them with `FOR UPDATE SKIP LOCKED`),
sends them with the channel's Sender, and records the result: sent (with the
provider's message id), rescheduled (exponential backoff with jitter, or the
provider's retry_after), or failed (permanent error or too many attempts). A
row held by a process whose heartbeat is stale is free (`bot.leases`); each claim
writes a fencing token that the result's write must name, so a paused process's
late result never overwrites the row after a takeover. A
retry_after (rate limit, pacing) is not a failed attempt. Rows of an opted-out
conversation are not sent, except the opt-out confirmation itself.

Each lane (Telegram, SMS, simulated chats) has its own sends in flight, so a
Telegram backlog paced at its rate limit never delays SMS replies. Within a
lane, due live replies are claimed before bulk rows (`priority`: announcements
and reminders, fed a few at a time by `bot.gateway.announce`).

No duplicates, no losses: the claim commits `send_started_at` on each row before
its provider is called, so a crash leaves evidence. A row claimed with that
evidence, or whose send got no answer (`SendResult.unknown`), had a send whose
outcome is unknown: it is reconciled before it is repeated. The sender asks its
provider (`Lookup`): Twilio lists its messages; Telegram is asked about the
chat's message ids after the newest message known to be there before the
attempt: a reply known to have arrived, or the person's own message stored
before it (`bot.gateway.chat_anchor`, `bot.channels.telegram_lookup`). An id
found there, not yet stored on another row of the conversation (Telegram's ids
count per chat), is adopted, and only when the
provider provably has nothing is the row sent again; "nothing new" counts as
proof only once the request cannot still be on its way to the provider (each
sender's `request_in_flight`, 30 s for Twilio and Telegram, after the request
left): until then the row is looked up again. When it cannot be told (a
sender without a lookup; Telegram with no known message of the chat to count
from, or an earlier send whose outcome is still unknown) the row is not sent
again: it ends as "unknown". With Redis, a row whose request never left
(no mark, `bot.gateway.send_marks`) is sent again without asking. Every case is
counted (`unknown_counts`, on /healthz) with how it ended: found, resent or
given up, and logged without personal data.

After storing a Twilio id, the sender applies the delivery statuses that came
before it (`bot.gateway.statuses`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, and_, bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from bot import leases
from bot.channels.base import (
    REQUEST_IN_FLIGHT,
    REQUEST_MARK,
    SMS,
    TELEGRAM,
    LookupResult,
    Sender,
    SendResult,
)
from bot.channels.request_tracing import RequestNotMarkedError
from bot.db import utcnow
from bot.direct_sql import DirectStatement
from bot.gateway.chat_anchor import newest_inbound_before
from bot.gateway.options import GatewayOptions
from bot.gateway.send_marks import SendMarks
from bot.gateway.statuses import apply_early_statuses
from bot.group_commit import GroupCommit, commit_alone
from bot.loops import ClaimLoop, backoff, in_thread
from bot.messages.models import (
    OPTED_OUT,
    OUTBOX_DELIVERED,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENT,
    OUTBOX_UNKNOWN,
    RECONCILED_FOUND,
    RECONCILED_GIVEN_UP,
    RECONCILED_RESENT,
    Conversation,
    OutboxMessage,
)

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500
SIMULATOR_LANE = "simulator"
LANES = (TELEGRAM, SMS, SIMULATOR_LANE)
RECONCILING = "pending"
"""`reconciled` of a row whose send's outcome is unknown and not yet settled."""
UNMARKED = "unmarked"
"""`reconciled` of a row whose request could not be marked as leaving (Redis
down): a takeover asks the provider (`bot.gateway.send_marks`)."""
LOOKUP_SKEW = timedelta(seconds=60)
"""Looked up from this long before the attempt started (the clocks of the
gateway and the provider differ)."""
UNKNOWN, FOUND, RESENT, GIVEN_UP = "unknown", "found", "resent", "given_up"
COUNTERS = (UNKNOWN, FOUND, RESENT, GIVEN_UP)


def lane_of(channel: str, simulated: bool) -> str:
    """The lane a row is sent in: its channel, or the simulator's."""
    return SIMULATOR_LANE if simulated else channel


@dataclass(frozen=True)
class OutgoingMessage:
    """A claimed outbox row with what sending it needs."""

    outbox_id: int
    conversation_id: int
    channel: str
    address: str
    simulated: bool
    body: dict[str, Any]
    attempts: int
    send_started_at: datetime
    """When the first attempt whose outcome is not known yet started."""
    in_doubt: bool = False
    """A previous attempt's outcome is unknown (no result stored): reconcile."""
    reconciling: bool = False
    """That case is already counted (its send got no answer earlier)."""
    unmarked: bool = False
    """Its request may have left without a mark (`UNMARKED`)."""
    lease_token: int | None = None
    """The fencing token of the claim."""

    @property
    def lane(self) -> str:
        """The lane this row is sent in."""
        return lane_of(self.channel, self.simulated)


outbox, conversations = OutboxMessage.__table__, Conversation.__table__


def _lease_free() -> Any:
    """SQL: an outbox row's lease may be taken now (parameters now, stale, me)."""
    return leases.lease_free(
        outbox.c.lease_owner,
        outbox.c.lease_until,
        bindparam("now", type_=DateTime()),
        bindparam("stale", type_=DateTime()),
        bindparam("me"),
    )


STORE_RESULT = DirectStatement(
    update(outbox).where(
        outbox.c.id == bindparam("b_id"),
        outbox.c.lease_owner == bindparam("b_owner"),
        outbox.c.lease_token == bindparam("b_token"),
    ),
    values_from_parameters=True,
)
"""A send's result, while the claim (owner and token) still holds the row: the
columns to set are the other parameters of the execution."""


class ClaimStatements:
    """The outbox claim's SQL, built once with bound parameters (building and
    caching a statement's key costs more CPU than running it)."""

    def __init__(self) -> None:
        self._due: dict[tuple[str, str], DirectStatement] = {}
        ids = bindparam("ids", expanding=True)
        claimable = and_(outbox.c.id.in_(ids), outbox.c.status == OUTBOX_PENDING)
        self.drop = DirectStatement(
            update(outbox)
            .where(claimable, _lease_free())
            .values(status=OUTBOX_FAILED, last_error=OPTED_OUT)
        )
        """Rows of an opted-out conversation: not sent."""
        self.take = DirectStatement(
            update(outbox)
            .where(claimable, _lease_free())
            .values(
                lease_owner=bindparam("me"),
                lease_until=bindparam("until", type_=DateTime()),
                lease_token=bindparam("token"),
                send_started_at=func.coalesce(
                    outbox.c.send_started_at, bindparam("now", type_=DateTime())
                ),
            )
        )
        """Lease the rows and mark their sends as started, unless an earlier
        attempt's mark is there (then the row is in doubt)."""
        self.taken = DirectStatement(
            select(
                outbox.c.id,
                outbox.c.conversation_id,
                conversations.c.channel,
                conversations.c.address,
                conversations.c.simulated,
                outbox.c.body,
                outbox.c.attempts,
                outbox.c.send_started_at,
                outbox.c.reconciled,
            )
            .join(conversations, conversations.c.id == outbox.c.conversation_id)
            .where(
                outbox.c.id.in_(bindparam("ids", expanding=True)),
                outbox.c.lease_owner == bindparam("me"),
                outbox.c.lease_token == bindparam("token"),
            )
            .order_by(outbox.c.id)
        )
        """The rows this claim (its token) holds, with what sending needs."""

    def due(self, lane: str, session: Session) -> DirectStatement:
        """Up to `limit` due rows of one lane, each the oldest pending row of its
        conversation: (id, suppressed by an opt-out)."""
        dialect = session.get_bind().dialect.name
        key = (lane, dialect)
        if key not in self._due:
            self._due[key] = DirectStatement(_due_rows(lane, dialect == "postgresql"))
        return self._due[key]


def _due_rows(lane: str, lock: bool) -> Any:
    earlier = outbox.alias("earlier")
    blocked = exists().where(
        earlier.c.conversation_id == outbox.c.conversation_id,
        earlier.c.status == OUTBOX_PENDING,
        earlier.c.id < outbox.c.id,
    )
    in_lane = (
        conversations.c.simulated.is_(True)
        if lane == SIMULATOR_LANE
        else and_(conversations.c.simulated.is_(False), conversations.c.channel == lane)
    )
    due = (
        select(
            outbox.c.id,
            and_(conversations.c.opted_out, ~outbox.c.ignore_opt_out),
        )
        .join(conversations, conversations.c.id == outbox.c.conversation_id)
        .where(
            outbox.c.status == OUTBOX_PENDING,
            outbox.c.next_attempt_at <= bindparam("now", type_=DateTime()),
            _lease_free(),
            in_lane,
            ~blocked,
        )
        .order_by(outbox.c.priority, outbox.c.id)  # live rows first
        .limit(bindparam("limit"))
    )
    return due.with_for_update(skip_locked=True, of=outbox) if lock else due


def in_flight_for(sender: object, started: datetime) -> float:
    """Seconds until a request that left at `started` can no longer land at
    `sender`'s provider (`Lookup.request_in_flight`, the whole
    `REQUEST_IN_FLIGHT` for a sender that does not say; 0: it cannot by now)."""
    window = float(getattr(sender, "request_in_flight", REQUEST_IN_FLIGHT))
    return max(0.0, window - (utcnow() - started).total_seconds())


class OutboxSender(ClaimLoop[OutgoingMessage]):
    """Claims due outbox rows and sends them with the channels' senders."""

    name = "outbox"

    def __init__(
        self,
        sessions: Callable[[], Session],
        senders: Mapping[str, Sender],
        simulator: Sender,
        owner: str,
        options: GatewayOptions,
        lanes: tuple[str, ...] = LANES,
        *,
        writes: GroupCommit,
        marks: SendMarks | None = None,
    ) -> None:
        """`writes`: the process's group commit (the one the intake and the
        worker use); `marks`: where requests are marked as leaving (Redis), or
        None."""
        super().__init__(
            options.outbox_concurrency * len(lanes),
            options.poll_interval,
            options.shutdown_grace,
        )
        self._sessions = sessions
        self.writes = writes
        self._senders = senders
        self._simulator = simulator
        self._owner = owner
        self._options = options
        self._lanes = lanes
        self._busy: Counter[str] = Counter()
        self._unknown: Counter[str] = Counter({name: 0 for name in COUNTERS})
        self._tokens = leases.Tokens()
        self._statements = ClaimStatements()
        self._marks = marks
        self._unmarked: set[int] = set()
        """Rows this process flagged `UNMARKED` and has not stored a result of."""

    @property
    def owner(self) -> str:
        """The process whose leases this sender takes."""
        return self._owner

    def reserve(self, lane: str) -> int | None:
        """A free send of `lane` held for a reply this process is storing, with
        the fencing token to lease it under (`adopt`); None when the lane is
        full or the sender stopping (the reply then waits for a claim)."""
        if self.stopping or self._busy[lane] >= self._options.outbox_concurrency:
            return None
        self._busy[lane] += 1
        return self._tokens.new()

    def unreserve(self, lane: str) -> None:
        """Give back a reservation that leased nothing."""
        self._busy[lane] -= 1

    def adopt(self, item: OutgoingMessage, more: bool) -> None:
        """Send a row this process leased while storing it (in the transaction
        that inserted it, under a `reserve`d token): no claim, no query. The
        loop looks for work after it only when `more` replies of the turn wait
        for it or a retry was put off (a plain send needs no look)."""

        async def send() -> None:
            await self.handle(item)
            if more or self.due_set:
                self.notify()

        self.spawn(send(), look_after=False)

    def unknown_counts(self) -> dict[str, int]:
        """Sends with an unknown outcome seen by this process, and how they ended
        (found, resent, given_up); some may still be open."""
        return {name: self._unknown[name] for name in COUNTERS}

    async def claim(self, limit: int) -> list[OutgoingMessage]:
        """Take the lease of due rows, each the oldest of its chat, up to the free
        sends of each lane."""
        free = {
            lane: self._options.outbox_concurrency - self._busy[lane]
            for lane in self._lanes
        }
        free = {lane: count for lane, count in free.items() if count > 0}
        if not free:
            return []
        items = await in_thread(self._claim, free)
        for item in items:
            self._busy[item.lane] += 1
        return items

    def _claim(self, free: dict[str, int]) -> list[OutgoingMessage]:
        now = utcnow()
        token = self._tokens.new()
        params = {
            "now": now,
            "stale": leases.stale_before(now, self._options.heartbeat_timeout),
            "me": self._owner,
        }
        with self._sessions() as session:
            due: list[tuple[int, bool]] = []
            for lane, limit in free.items():
                statement = self._statements.due(lane, session)
                due.extend(statement.execute(session, {**params, "limit": limit}))
            send = [int(outbox_id) for outbox_id, suppressed in due if not suppressed]
            drop = [int(outbox_id) for outbox_id, suppressed in due if suppressed]
            dropped = 0
            if drop:
                dropped = self._statements.drop.execute(
                    session, {**params, "ids": drop}
                ).rowcount
            if send:
                until = now + timedelta(seconds=self._options.lease_seconds)
                self._statements.take.execute(
                    session, {**params, "ids": send, "until": until, "token": token}
                )
            session.commit()
            if dropped:
                log.info("outbox: %d rows not sent (conversation opted out)", dropped)
                self.notify()
            if not send:
                return []
            rows = self._statements.taken.execute(
                session, {"ids": send, "me": self._owner, "token": token}
            ).all()
            return [
                OutgoingMessage(
                    outbox_id=row.id,
                    conversation_id=row.conversation_id,
                    channel=row.channel,
                    address=row.address,
                    simulated=row.simulated,
                    body=dict(row.body),
                    attempts=row.attempts,
                    send_started_at=row.send_started_at,
                    in_doubt=row.send_started_at != now,  # marked before this claim
                    reconciling=row.reconciled == RECONCILING,
                    unmarked=row.reconciled == UNMARKED,
                    lease_token=token,
                )
                for row in rows
            ]

    async def handle(self, item: OutgoingMessage) -> None:
        """Send one claimed row (reconciling an unknown earlier outcome first) and
        record what happened."""
        try:
            if item.in_doubt and await self._reconcile(item):
                return
            result = await self._send(item)
            await self._finish(item, result)
        finally:
            self._busy[item.lane] -= 1
            self._unmarked.discard(item.outbox_id)

    def _sender(self, item: OutgoingMessage) -> Sender | None:
        return self._simulator if item.simulated else self._senders.get(item.channel)

    async def _send(self, item: OutgoingMessage) -> SendResult:
        sender = self._sender(item)
        if sender is None:
            return SendResult(ok=False, error=f"no sender for {item.channel}")
        marking = self._marked(item)
        mark = REQUEST_MARK.set(
            functools.partial(self._mark, item) if marking else None
        )
        try:
            return await asyncio.wait_for(
                sender.send(item.address, item.body), timeout=self._options.send_timeout
            )
        except RequestNotMarkedError:
            return SendResult(ok=False, error="not sent: its request was not marked")
        except asyncio.TimeoutError:
            return SendResult(ok=False, unknown=True, error="timeout")
        except Exception as exc:  # the request may have gone out
            return SendResult(ok=False, unknown=True, error=type(exc).__name__)
        finally:
            REQUEST_MARK.reset(mark)

    def _marked(self, item: OutgoingMessage) -> bool:
        """Whether this row's requests are marked as leaving (`send_marks`): with
        Redis, by a sender that marks (the providers' own, not the simulator)."""
        sender = self._sender(item)
        return (
            self._marks is not None
            and not item.simulated
            and bool(getattr(sender, "marks_requests", False))
        )

    async def _mark(self, item: OutgoingMessage) -> None:
        """Mark the row's request as leaving, or, when Redis cannot take it,
        flag the row `UNMARKED` first; RequestNotMarkedError when neither holds."""
        assert self._marks is not None
        if await self._marks.mark(item.outbox_id, item.send_started_at):
            return
        try:
            flagged = await in_thread(self._store_alone, item, {"reconciled": UNMARKED})
        except Exception as exc:  # the database too: do not send
            raise RequestNotMarkedError(type(exc).__name__) from exc
        if not flagged:
            raise RequestNotMarkedError("lease lost")
        self._unmarked.add(item.outbox_id)

    async def _reconcile(self, item: OutgoingMessage) -> bool:
        """Settle a row whose earlier send has an unknown outcome; False when the
        provider provably has no such message (send it again)."""
        started = item.send_started_at
        if not item.reconciling:
            self._count(item, UNKNOWN, "no result stored (process stopped?)")
            if self._marks is not None and self._marked(item) and not item.unmarked:
                marked = await self._marks.check(item.outbox_id, started)
                if marked.never_left:
                    self._count(item, RESENT, "its request never left (no mark)")
                    return False
                if marked.left_at is not None:
                    started = datetime.utcfromtimestamp(marked.left_at)
        lookup = getattr(self._sender(item), "lookup", None)
        if lookup is None:
            await in_thread(self._give_up, item, "outcome unknown, no lookup")
            return True
        try:
            after = await in_thread(self._last_arrived, item)
            found: LookupResult = await asyncio.wait_for(
                lookup(
                    item.address,
                    item.body,
                    item.send_started_at - LOOKUP_SKEW,
                    after=after,
                ),
                timeout=self._options.send_timeout,
            )
        except Exception as exc:  # timeout included: look again later
            found = LookupResult(error=type(exc).__name__)
        if found.undecidable:
            await in_thread(self._give_up, item, "outcome unknown, cannot be told")
            return True
        if found.error is not None:
            error = f"lookup failed: {found.error}"
            await self._finish(item, SendResult(ok=False, unknown=True, error=error))
            return True
        fresh = await in_thread(self._unrecorded, item.conversation_id, found.ids)
        if fresh:
            result = SendResult(ok=True, provider_message_id=fresh[0])
            await self._finish(item, result, RECONCILED_FOUND)
            return True
        still = in_flight_for(self._sender(item), started)
        if still > 0:  # not there yet, but the request may still be on its way
            await in_thread(self._look_again, item, still)
            return True
        self._count(item, RESENT, "the provider has no such message")
        return False

    def _last_arrived(self, item: OutgoingMessage) -> str | None:
        """The chat message id after which this row's message may be (by
        Telegram's count: message ids count up per chat for both sides): the
        newest of the replies known to have arrived before this row and of the
        person's messages stored before its attempt (`bot.gateway.chat_anchor`).
        None when there is neither, or when an earlier send's outcome is unknown
        (then a later message of the chat may be that one's)."""
        with self._sessions() as session:
            anchor = newest_inbound_before(
                session, item.outbox_id, item.send_started_at
            )
            rows = session.execute(
                select(OutboxMessage.status, OutboxMessage.provider_message_id).where(
                    OutboxMessage.conversation_id == item.conversation_id,
                    OutboxMessage.id < item.outbox_id,
                    OutboxMessage.status.in_(
                        (OUTBOX_SENT, OUTBOX_DELIVERED, OUTBOX_UNKNOWN)
                    ),
                )
            ).all()
        if any(status == OUTBOX_UNKNOWN for status, _ in rows):
            return None
        known = [int(pid) for _, pid in rows if pid is not None and pid.isdigit()]
        if anchor is not None:
            known.append(anchor)
        return str(max(known)) if known else None

    def _unrecorded(self, conversation_id: int, ids: tuple[str, ...]) -> list[str]:
        """The provider ids not stored on another outbox row of the conversation,
        in the given order (Telegram's ids count per chat: another chat's reply
        may have the same id)."""
        if not ids:
            return []
        with self._sessions() as session:
            known = set(
                session.execute(
                    select(OutboxMessage.provider_message_id).where(
                        OutboxMessage.conversation_id == conversation_id,
                        OutboxMessage.provider_message_id.in_(ids),
                    )
                ).scalars()
            )
        return [provider_id for provider_id in ids if provider_id not in known]

    def _count(self, item: OutgoingMessage, counter: str, why: str) -> None:
        self._unknown[counter] += 1
        log.log(
            logging.INFO if counter in (FOUND, RESENT) else logging.WARNING,
            "outbox %s (conversation %s, %s): send outcome %s: %s",
            item.outbox_id,
            item.conversation_id,
            item.lane,
            "unknown" if counter == UNKNOWN else counter.replace("_", " "),
            why,
        )

    def _give_up(self, item: OutgoingMessage, error: str) -> None:
        """Store the row as "unknown": it may or may not have arrived."""
        with self._sessions() as session:
            updated = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == item.outbox_id,
                    OutboxMessage.lease_owner == self._owner,
                    OutboxMessage.lease_token == item.lease_token,
                )
                .values(
                    status=OUTBOX_UNKNOWN,
                    reconciled=RECONCILED_GIVEN_UP,
                    last_error=error[:MAX_ERROR_LENGTH],
                    lease_owner=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
            session.commit()
        if updated.rowcount == 1:
            self._count(item, GIVEN_UP, error)

    def retry_delay(self, attempts: int, result: SendResult) -> float:
        """Seconds to wait before the next attempt after a transient failure."""
        delay = backoff(
            attempts, self._options.send_backoff_base, self._options.send_backoff_cap
        )
        if result.retry_after is not None:
            delay = max(float(result.retry_after), 0.0) + min(delay, 1.0) * 0.1
        return delay

    async def _finish(
        self,
        item: OutgoingMessage,
        result: SendResult,
        reconciled: str | None = None,
    ) -> None:
        """Store the result of a send (or of a lookup, `reconciled` "found");
        a known one with the other writes of this moment (group commit)."""
        if result.unknown and not result.ok:
            await in_thread(self._finish_unknown, item, result)
            return
        now = utcnow()
        paced = not result.ok and result.retry_after is not None
        looked_up = reconciled is not None
        attempts = item.attempts if paced or looked_up else item.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "lease_owner": None,
            "lease_until": None,
            "send_started_at": None,
            "lease_token": None,
        }
        if item.in_doubt:
            values["reconciled"] = reconciled or RECONCILED_RESENT
        elif item.outbox_id in self._unmarked:
            values["reconciled"] = None  # settled: no takeover needs the flag
        if result.ok:
            values.update(
                status=OUTBOX_DELIVERED if item.simulated else OUTBOX_SENT,
                provider_message_id=result.provider_message_id,
                sent_at=now,
                last_error=None,
            )
            if item.simulated:
                values["delivery_status"] = "delivered"
        elif result.permanent or (
            not paced and attempts >= self._options.max_send_attempts
        ):
            values.update(status=OUTBOX_FAILED, last_error=_error(result))
        else:
            delay = self.retry_delay(max(attempts, 1), result)
            values.update(
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=_error(result),
            )
        early = (
            result.provider_message_id if result.ok and _has_statuses(item) else None
        )
        updated = await self.writes.run(
            functools.partial(self._store_result, item=item, values=values),
            then=None if early is None else _apply_early(early),
        )
        if updated and "next_attempt_at" in values:
            self.wake_in(delay)
        if updated and looked_up:
            self._count(item, FOUND, "the provider had it: its id is adopted")
        outcome = values.get("status", "retry")
        if not updated:
            log.warning(
                "outbox %s: lease lost before the result was stored", item.outbox_id
            )
        elif result.ok:
            log.debug(
                "outbox %s (conversation %s) sent", item.outbox_id, item.conversation_id
            )
        else:
            log.log(
                logging.DEBUG if paced else logging.WARNING,
                "outbox %s (conversation %s) attempt %d: %s -> %s",
                item.outbox_id,
                item.conversation_id,
                attempts,
                _error(result),
                outcome,
            )

    def _finish_unknown(self, item: OutgoingMessage, result: SendResult) -> None:
        """The send (or the lookup) got no answer: keep the evidence and look the
        message up before any new attempt, or give up when no lookup exists or
        after the last attempt."""
        if not (item.in_doubt or item.reconciling):
            self._count(item, UNKNOWN, _error(result))
        attempts = item.attempts + 1
        can_look = getattr(self._sender(item), "lookup", None) is not None
        if not can_look or attempts >= self._options.max_send_attempts:
            self._give_up(item, _error(result))
            return
        delay = self.retry_delay(attempts, result)
        self.wake_in(delay)
        self._store_alone(
            item,
            {
                "attempts": attempts,
                "lease_owner": None,
                "lease_until": None,
                "send_started_at": item.send_started_at,
                "reconciled": RECONCILING,
                "next_attempt_at": utcnow() + timedelta(seconds=delay),
                "last_error": _error(result),
            },
        )

    def _look_again(self, item: OutgoingMessage, delay: float) -> None:
        """The provider cannot tell yet (the request may still land): look the
        send up again after `delay` seconds, without counting an attempt."""
        self.wake_in(delay)
        self._store_alone(
            item,
            {
                "lease_owner": None,
                "lease_until": None,
                "send_started_at": item.send_started_at,
                "reconciled": RECONCILING,
                "next_attempt_at": utcnow() + timedelta(seconds=delay),
                "last_error": "outcome not known yet: looked up again later",
            },
        )

    def _store_result(
        self, session: Session, item: OutgoingMessage, values: dict[str, Any]
    ) -> bool:
        """Update the row while the lease is still ours; False when it was lost
        (the values are parameters of one prepared statement: no SQL is built).
        A `bot.group_commit` job."""
        updated = STORE_RESULT.execute(
            session,
            {
                **values,
                "b_id": item.outbox_id,
                "b_owner": self._owner,
                "b_token": item.lease_token,
            },
        )
        return bool(updated.rowcount == 1)

    def _store_alone(self, item: OutgoingMessage, values: dict[str, Any]) -> bool:
        """`_store_result` in a transaction of its own (blocking)."""
        return commit_alone(
            self._sessions,
            functools.partial(self._store_result, item=item, values=values),
        )


def _apply_early(provider_id: str) -> Callable[[Session, bool], object]:
    """The follow-up of a send's result that stored `provider_id`: apply the
    delivery statuses that came before it, after that commit (the status
    webhook keeps them committed, then looks for the id: one of the two sees
    the other's commit)."""

    def apply(session: Session, stored: bool) -> object:
        return stored and apply_early_statuses(session, provider_id)

    return apply


def _has_statuses(item: OutgoingMessage) -> bool:
    """Whether the provider sends delivery statuses for this row (SMS only)."""
    return not item.simulated and item.channel == SMS


def _error(result: SendResult) -> str:
    text = result.error or ("permanent" if result.permanent else "failed")
    return text[:MAX_ERROR_LENGTH]
