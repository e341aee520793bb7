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
Telegram backlog paced at its rate limit never delays SMS replies. A delivery
status that arrives before its message's provider id is stored is kept
(`PendingStatuses`) and applied when the id is recorded.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import Session, aliased

from bot import leases
from bot.channels.base import SMS, TELEGRAM, Sender, SendResult
from bot.db import utcnow
from bot.gateway.models import (
    OUTBOX_DELIVERED,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENT,
    OUTBOX_UNDELIVERED,
    Conversation,
    OutboxMessage,
)
from bot.gateway.options import GatewayOptions, backoff
from bot.gateway.pool import ClaimLoop, in_thread

log = logging.getLogger(__name__)

OPTED_OUT = "opted out"
MAX_ERROR_LENGTH = 500
DELIVERED_STATUSES = {"delivered", "read"}
UNDELIVERED_STATUSES = {"undelivered", "failed", "canceled"}
FINAL_STATUSES = DELIVERED_STATUSES | UNDELIVERED_STATUSES
SIMULATOR_LANE = "simulator"
LANES = (TELEGRAM, SMS, SIMULATOR_LANE)


def lane_of(channel: str, simulated: bool) -> str:
    """The lane a row is sent in: its channel, or the simulator's."""
    return SIMULATOR_LANE if simulated else channel


class PendingStatuses:
    """Delivery statuses for provider ids not stored yet, kept in memory for a while
    (bounded) until the sender records the id. Thread-safe."""

    def __init__(
        self,
        limit: int = 10_000,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, list[tuple[str, str | None]]]]
        self._items = OrderedDict()

    def add(
        self, provider_message_id: str, status: str, error_code: str | None
    ) -> None:
        """Keep a status for later (the oldest are forgotten first)."""
        with self._lock:
            now = self._clock()
            if provider_message_id in self._items:
                self._items[provider_message_id][1].append((status, error_code))
                return
            while self._items:
                oldest, (added, _) = next(iter(self._items.items()))
                if len(self._items) < self._limit and added > now - self._ttl:
                    break
                del self._items[oldest]
            self._items[provider_message_id] = (now, [(status, error_code)])

    def take(self, provider_message_id: str) -> list[tuple[str, str | None]]:
        """The statuses kept for this id, in arrival order, forgetting them."""
        with self._lock:
            _, statuses = self._items.pop(provider_message_id, (0.0, []))
            return statuses

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


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
    lease_token: int | None = None
    """The fencing token of the claim."""

    @property
    def lane(self) -> str:
        """The lane this row is sent in."""
        return lane_of(self.channel, self.simulated)


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
    ) -> None:
        super().__init__(
            options.outbox_concurrency * len(lanes),
            options.poll_interval,
            options.shutdown_grace,
        )
        self._sessions = sessions
        self._senders = senders
        self._simulator = simulator
        self._owner = owner
        self._options = options
        self._lanes = lanes
        self._busy: Counter[str] = Counter()
        self._tokens = leases.Tokens()
        self.pending_statuses = PendingStatuses()

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
        claimed: list[int] = []
        dropped = 0
        token = self._tokens.new()
        with self._sessions() as session:
            for lane, limit in free.items():
                lane_claimed, lane_dropped = self._claim_lane(
                    session, lane, limit, now, token
                )
                claimed.extend(lane_claimed)
                dropped += lane_dropped
            session.commit()
            if dropped:
                log.info("outbox: %d rows not sent (conversation opted out)", dropped)
                self.notify()
            if not claimed:
                return []
            rows = session.execute(
                select(OutboxMessage, Conversation)
                .join(Conversation, Conversation.id == OutboxMessage.conversation_id)
                .where(OutboxMessage.id.in_(claimed))
                .order_by(OutboxMessage.id)
            ).all()
            return [
                OutgoingMessage(
                    outbox_id=row.id,
                    conversation_id=conversation.id,
                    channel=conversation.channel,
                    address=conversation.address,
                    simulated=conversation.simulated,
                    body=dict(row.body),
                    attempts=row.attempts,
                    lease_token=token,
                )
                for row, conversation in rows
            ]

    def _claim_lane(
        self, session: Session, lane: str, limit: int, now: datetime, token: int
    ) -> tuple[list[int], int]:
        """Lease up to `limit` due rows of one lane with the claim's `token`;
        (their ids, rows dropped)."""
        until = now + timedelta(seconds=self._options.lease_seconds)
        lease_free = leases.lease_free(
            OutboxMessage.lease_owner,
            OutboxMessage.lease_until,
            now,
            leases.stale_before(now, self._options.heartbeat_timeout),
        )
        earlier = aliased(OutboxMessage)
        blocked = exists().where(
            earlier.conversation_id == OutboxMessage.conversation_id,
            earlier.status == OUTBOX_PENDING,
            earlier.id < OutboxMessage.id,
        )
        in_lane = (
            Conversation.simulated.is_(True)
            if lane == SIMULATOR_LANE
            else and_(Conversation.simulated.is_(False), Conversation.channel == lane)
        )
        due = (
            select(
                OutboxMessage.id,
                and_(Conversation.opted_out, ~OutboxMessage.ignore_opt_out),
            )
            .join(Conversation, Conversation.id == OutboxMessage.conversation_id)
            .where(
                OutboxMessage.status == OUTBOX_PENDING,
                OutboxMessage.next_attempt_at <= now,
                lease_free,
                in_lane,
                ~blocked,
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=OutboxMessage)
        claimed: list[int] = []
        dropped = 0
        for outbox_id, suppressed in session.execute(due).all():
            values: dict[str, Any] = (
                {"status": OUTBOX_FAILED, "last_error": OPTED_OUT}
                if suppressed
                else {
                    "lease_owner": self._owner,
                    "lease_until": until,
                    "lease_token": token,
                }
            )
            result = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == outbox_id,
                    OutboxMessage.status == OUTBOX_PENDING,
                    lease_free,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1 and suppressed:
                dropped += 1
            elif result.rowcount == 1:
                claimed.append(int(outbox_id))
        return claimed, dropped

    async def handle(self, item: OutgoingMessage) -> None:
        """Send one claimed row and record what happened."""
        try:
            result = await self._send(item)
            await in_thread(self._finish, item, result)
        finally:
            self._busy[item.lane] -= 1

    async def _send(self, item: OutgoingMessage) -> SendResult:
        sender = self._simulator if item.simulated else self._senders.get(item.channel)
        if sender is None:
            return SendResult(ok=False, error=f"no sender for {item.channel}")
        try:
            return await asyncio.wait_for(
                sender.send(item.address, item.body), timeout=self._options.send_timeout
            )
        except asyncio.TimeoutError:
            return SendResult(ok=False, error="timeout")
        except Exception as exc:
            return SendResult(ok=False, error=type(exc).__name__)

    def retry_delay(self, attempts: int, result: SendResult) -> float:
        """Seconds to wait before the next attempt after a transient failure."""
        delay = backoff(
            attempts, self._options.send_backoff_base, self._options.send_backoff_cap
        )
        if result.retry_after is not None:
            delay = max(float(result.retry_after), 0.0) + min(delay, 1.0) * 0.1
        return delay

    def _finish(self, item: OutgoingMessage, result: SendResult) -> None:
        now = utcnow()
        paced = not result.ok and result.retry_after is not None
        attempts = item.attempts if paced else item.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "lease_owner": None,
            "lease_until": None,
            "lease_token": None,
        }
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
        with self._sessions() as session:
            updated = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == item.outbox_id,
                    OutboxMessage.lease_owner == self._owner,
                    OutboxMessage.lease_token == item.lease_token,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if updated.rowcount == 1 and result.ok and result.provider_message_id:
                for status, code in self.pending_statuses.take(
                    result.provider_message_id
                ):
                    record_status(session, result.provider_message_id, status, code)
            session.commit()
        outcome = values.get("status", "retry")
        if updated.rowcount != 1:
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


def _error(result: SendResult) -> str:
    text = result.error or ("permanent" if result.permanent else "failed")
    return text[:MAX_ERROR_LENGTH]


def record_status(
    session: Session,
    provider_message_id: str,
    status: str,
    error_code: str | None = None,
) -> bool:
    """Record a provider's delivery status for a sent row (idempotent); the caller
    commits. A late intermediate status never overwrites a final one. False when no
    row has this provider message id."""
    row = session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.provider_message_id == provider_message_id)
        .with_for_update()
    ).scalar_one_or_none()
    if row is None:
        return False
    status = status.strip().lower()
    if row.delivery_status in FINAL_STATUSES and status not in FINAL_STATUSES:
        return True
    row.delivery_status = status
    row.error_code = error_code or None
    if status in DELIVERED_STATUSES:
        row.status = OUTBOX_DELIVERED
    elif status in UNDELIVERED_STATUSES:
        row.status = OUTBOX_UNDELIVERED
    session.flush()
    return True
