"""Hand queued e-mails to the mail server: at once from the action, or later
from the gateway's loop when the action's process died before it could.

`queue_mail` writes the row in the caller's transaction (the one that issued
the code). `MailQueue.deliver(id)` claims the row (a conditional `UPDATE`, so
only one process sends it), sends, and deletes the row; a failure there is
final (the person is told and asks again). `MailQueue.sweep()` sends the rows
still queued `GRACE` after they were written and not claimed, or whose claim is
gone, retrying with backoff until the mail expires.

A claim names its process (`owner`, a lease owner of `bot.leases`: the action
server and each gateway keep a heartbeat) and lasts `LEASE` at most. It is gone
when its process's heartbeat is older than `heartbeat_timeout` (the sender was
killed mid-send: the mail goes out seconds later, from the sweep or from the
repeated turn's `deliver`), or when `LEASE` has passed (a claim without an
owner, or a sender stuck that long). A process killed after the server
accepted the mail and before the row is deleted sends it once more: that is
the one duplicate left (SMTP has no idempotent submission), and it is logged;
so would a sender whose heartbeat stalled past the timeout while it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from bot import leases
from bot.db import on_postgresql, utcnow
from bot.notify.email import EmailDeliveryError, EmailSender
from bot.notify.models import MAIL_FAILED, MAIL_QUEUED, QueuedMail
from bot.policy.validation import mask_email

log = logging.getLogger(__name__)

mails = QueuedMail.__table__
# The statements of one mail's way out, built once (a code mail goes with
# most registrations): building one cost more than running it.
QUEUE = insert(mails)
MAIL = select(mails).where(mails.c.id == bindparam("mail_id"))
MAIL_STATUS = select(mails.c.status).where(mails.c.id == bindparam("mail_id"))
EXPIRE = (
    update(mails)
    .where(
        mails.c.id == bindparam("mail_id"),
        mails.c.status == MAIL_QUEUED,
        mails.c.expires_at <= bindparam("now"),
    )
    .values(status=MAIL_FAILED, to_address=None, body=None)
)
CLAIM_GONE = or_(
    mails.c.claimed_until.is_(None),
    mails.c.claimed_until < bindparam("now", type_=DateTime()),
    leases.dead(mails.c.claimed_by, bindparam("stale", type_=DateTime())),
)
"""SQL: the row is not claimed, or its claim ran out or its sender is gone."""
TAKE = (
    update(mails)
    .where(
        mails.c.id == bindparam("mail_id"), mails.c.status == MAIL_QUEUED, CLAIM_GONE
    )
    .values(
        claimed_until=bindparam("until"),
        claimed_by=bindparam("owner"),
        attempts=mails.c.attempts + 1,
    )
)
HANDED_OVER = delete(mails).where(mails.c.id == bindparam("mail_id"))
LEASE = timedelta(seconds=60)
GRACE = timedelta(seconds=5)
"""How long the action that queued a mail has to claim it before the sweep
may (it claims it at once, after its commit)."""
SWEEP_INTERVAL = 5.0
SWEEP_BATCH = 20
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class _Claimed:
    id: int
    to: str
    subject: str
    body: str
    attempts: int


def queue_mail(
    session: Session,
    to: str,
    subject: str,
    body: str,
    *,
    now: datetime,
    expires_at: datetime,
) -> int:
    """Queue one mail in the caller's transaction; its id (for `deliver`)."""
    result = session.execute(
        QUEUE,
        {
            "to_address": to,
            "subject": subject,
            "body": body,
            "status": MAIL_QUEUED,
            "attempts": 0,
            "created_at": now,
            "expires_at": expires_at,
        },
    )
    return int(result.inserted_primary_key[0])


class MailQueue:
    """Sends queued mails with `sender`, over a session factory."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        sender: EmailSender,
        *,
        interval: float = SWEEP_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        heartbeat_timeout: float = leases.HEARTBEAT_TIMEOUT,
    ) -> None:
        """`clock` is naive UTC; `interval` the sweeping loop's period; `owner`
        this process's lease owner (its heartbeat must be kept: without one,
        its claims last `LEASE`)."""
        self._sessions = sessions
        self._sender = sender
        self._interval = interval
        self._clock = clock
        self._owner = owner
        self._timeout = heartbeat_timeout
        self._stopped = asyncio.Event()

    # --- from the action -------------------------------------------------------

    async def deliver(self, mail_id: int) -> bool:
        """Send one mail now. True when it is handed over (now or earlier, or
        in flight elsewhere); False when it failed (now or earlier)."""
        claimed, state = await asyncio.to_thread(self._claim_one, mail_id)
        if claimed is None:
            return state
        try:
            await self._sender.send(claimed.to, claimed.subject, claimed.body)
        except EmailDeliveryError:
            await asyncio.to_thread(self._settle, claimed.id, False)
            return False
        await asyncio.to_thread(self._settle, claimed.id, True)
        return True

    def _claim_one(self, mail_id: int) -> tuple[_Claimed | None, bool]:
        now = self._clock()
        with self._sessions() as session, session.begin():
            expired = session.execute(EXPIRE, {"mail_id": mail_id, "now": now})
            if expired.rowcount:
                return None, False
            claimed = self._claim(session, [mail_id], now)
            if claimed:
                return claimed[0], True
            status = session.execute(
                MAIL_STATUS, {"mail_id": mail_id}
            ).scalar_one_or_none()
        # Gone: handed over (or erased); queued: another process is sending it.
        return None, status != MAIL_FAILED

    def _settle(self, mail_id: int, sent: bool, retry: bool = False) -> None:
        """Delete a handed-over mail; a failed one is retried later (`retry`)
        or kept as failed without address or body."""
        with self._sessions() as session, session.begin():
            if sent:
                session.execute(HANDED_OVER, {"mail_id": mail_id})
            elif retry:
                session.execute(
                    update(mails)
                    .where(mails.c.id == mail_id)
                    .values(claimed_until=self._clock() + timedelta(seconds=30))
                )
            else:
                session.execute(
                    update(mails)
                    .where(mails.c.id == mail_id)
                    .values(status=MAIL_FAILED, to_address=None, body=None)
                )

    # --- the gateway's loop ----------------------------------------------------

    def _claim_due(self) -> list[_Claimed]:
        now = self._clock()
        with self._sessions() as session, session.begin():
            session.execute(
                update(mails)
                .where(mails.c.status == MAIL_QUEUED, mails.c.expires_at <= now)
                .values(status=MAIL_FAILED, to_address=None, body=None)
            )
            query = (
                select(mails.c.id)
                .where(
                    mails.c.status == MAIL_QUEUED,
                    mails.c.created_at <= now - GRACE,
                    CLAIM_GONE,
                )
                .order_by(mails.c.id)
                .limit(SWEEP_BATCH)
            )
            if on_postgresql(session):
                query = query.with_for_update(skip_locked=True)
            ids = list(session.execute(query, self._claim_params(now)).scalars())
            return self._claim(session, ids, now) if ids else []

    async def sweep(self) -> int:
        """Send the mails whose sender never got to them; how many were sent."""
        sent = 0
        for mail in await asyncio.to_thread(self._claim_due):
            if mail.attempts > 1:
                log.warning("mail %s sent again after its claim was gone", mail.id)
            try:
                await self._sender.send(mail.to, mail.subject, mail.body)
            except EmailDeliveryError as exc:
                final = exc.permanent or mail.attempts >= MAX_ATTEMPTS
                log.warning(
                    "queued mail %s to %s not sent (%s)",
                    mail.id,
                    mask_email(mail.to),
                    "final" if final else "retried",
                )
                await asyncio.to_thread(self._settle, mail.id, False, not final)
                continue
            await asyncio.to_thread(self._settle, mail.id, True)
            sent += 1
        return sent

    async def run(self) -> None:
        """Sweep every interval until `stop`; errors are logged, not raised."""
        while not self._stopped.is_set():
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 (the loop must go on)
                log.error("mail queue sweep failed: %s", type(exc).__name__)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._interval)

    def stop(self) -> None:
        """End `run` after the current sweep."""
        self._stopped.set()

    def _claim_params(self, now: datetime) -> dict[str, Any]:
        return {"now": now, "stale": leases.stale_before(now, self._timeout)}

    def _claim(self, session: Session, ids: list[int], now: datetime) -> list[_Claimed]:
        """Claim for this process the queued rows among `ids` whose claim is gone."""
        claimed: list[_Claimed] = []
        params = {**self._claim_params(now), "until": now + LEASE, "owner": self._owner}
        for mail_id in ids:
            taken = session.execute(TAKE, {**params, "mail_id": mail_id})
            if taken.rowcount != 1:
                continue
            row = session.execute(MAIL, {"mail_id": mail_id}).one()
            claimed.append(
                _Claimed(row.id, row.to_address, row.subject, row.body, row.attempts)
            )
        return claimed
