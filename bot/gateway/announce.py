"""The announcement sender: feeds a batch's result messages and the purchase
reminders into the outbox, paced, a few at a time, in every gateway process.

The outbox sends; this loop only decides how many bulk rows it may hold:

- **Paced below the provider's limit.** Each lane (Telegram, SMS) takes one
  turn per message from a pacer of its own (`announce:<account>` in Redis when
  `REDIS_URL` is set, so every process together keeps it), at `ANNOUNCE_SHARE`
  (0.8) of the provider's configured rate: `TELEGRAM_MESSAGES_PER_SECOND`, or
  the Twilio number's `TWILIO_MESSAGES_PER_SECOND` (1 when unset, Twilio's
  default for a long code). The rest of the provider's rate is headroom for
  live replies, which the outbox still paces at the full rate.
- **A small window.** At most `window` bulk rows per lane wait in the outbox
  (about two seconds of the lane's feed rate), so a live reply never queues
  behind thousands of announcement rows; and the outbox claims due live rows
  before bulk ones (`priority`), so it goes out at the next free send slot.
- **Exactly once.** Each move stores the outbox row and moves the announcement
  row in one transaction (`bot.selection.delivery`), rows taken with `SKIP
  LOCKED` and moved by conditional updates: several processes feed at once
  without sending anything twice, and a `kill -9` loses nothing (the outbox
  reconciles a send cut off by the crash before repeating it).
- **Pause.** A paused batch is not fed (nor are its reminders); rows already in
  the window still go out.

Results flow back: each look settles the queued rows whose outbox row is done;
SMS delivery statuses move their row at once (`bot.gateway.statuses`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.channels.base import SMS, TELEGRAM, Channel, Reply, Sender
from bot.channels.pacing import Pacer, PacingStore, bot_id, make_pacer
from bot.db import utcnow
from bot.loops import ClaimLoop, in_thread
from bot.selection import delivery
from bot.settings import Settings

log = logging.getLogger(__name__)

REMINDERS = "reminders"
LANES = (TELEGRAM, SMS)


@dataclass(frozen=True)
class AnnounceOptions:
    """How fast and how much the sender feeds."""

    share: float = 0.8
    """Part of each provider's rate the bulk rows may use."""
    window_seconds: float = 2.0
    """Bulk rows per lane in the outbox: this many seconds of the feed rate."""
    min_window: int = 10
    move_seconds: float = 0.5
    """Pacing turns taken for one move (one transaction) at most this long."""
    busy_look: float = 0.2
    """Seconds to the next look while the window is full or rows are in flight."""
    idle_look: float = 2.0
    """Seconds between looks when nothing is to be sent (a publication or a
    resume in this process wakes the loop at once)."""

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError("share must be in (0, 1]")


def feed_rates(settings: Settings, share: float) -> dict[str, int]:
    """Messages a second each lane is fed at, all processes together."""
    return {
        TELEGRAM: max(1, math.floor(settings.telegram_per_second * share)),
        SMS: max(1, math.floor((settings.twilio_per_second or 1) * share)),
    }


def feed_pacers(
    settings: Settings, rates: Mapping[str, int], pacing: PacingStore | None
) -> dict[str, Pacer]:
    """One pacer per lane, shared through Redis when configured."""
    telegram = bot_id(settings.telegram_token) if settings.telegram_token else "none"
    sms = settings.twilio_from_number or "none"
    return {
        TELEGRAM: make_pacer(
            pacing, f"announce:telegram:{telegram}", rates[TELEGRAM], 1
        ),
        SMS: make_pacer(pacing, f"announce:twilio:{sms}", rates[SMS], 1),
    }


class AnnouncementSender(ClaimLoop[str]):
    """Feeds announcement rows and reminders into the outbox (items: lanes)."""

    name = "announce"

    def __init__(
        self,
        sessions: Callable[[], Session],
        channels: Mapping[str, Channel],
        senders: Mapping[str, Sender],
        settings: Settings,
        pacing: PacingStore | None,
        options: AnnounceOptions | None = None,
        on_outbox: Callable[[], None] = lambda: None,
        grace: float = 5.0,
    ) -> None:
        self.options = options or AnnounceOptions()
        super().__init__(len(LANES) + 1, self.options.idle_look, grace)
        self._sessions = sessions
        self._channels = channels
        self._providers = frozenset(senders)
        self._key = settings.pseudonym_key
        self.rates = feed_rates(settings, self.options.share)
        self._pacers = feed_pacers(settings, self.rates, pacing)
        self._on_outbox = on_outbox
        self._next: dict[str, float] = dict.fromkeys((*LANES, REMINDERS), 0.0)
        self._busy: set[str] = set()
        self.moved = 0
        """Rows this process handed to the outbox (announcements and reminders)."""

    def window(self, lane: str) -> int:
        """Bulk rows this lane may have waiting in the outbox."""
        rate = self.rates[lane]
        return max(
            self.options.min_window, math.ceil(rate * self.options.window_seconds)
        )

    def notify(self) -> None:
        """Look at every lane now (a batch was published or resumed)."""
        for lane in self._next:
            self._next[lane] = 0.0
        super().notify()

    async def claim(self, limit: int) -> list[str]:
        """The lanes whose next look has come and that are not being fed."""
        now = time.monotonic()
        due = [
            lane
            for lane, at in self._next.items()
            if at <= now and lane not in self._busy
        ][:limit]
        later = [at - now for lane, at in self._next.items() if lane not in due]
        if later:
            self.wake_in(max(0.0, min(later)))
        self._busy.update(due)
        return due

    async def handle(self, item: str) -> None:
        """Feed one lane (or the reminders) once; set when to look again."""
        delay = self.options.idle_look
        try:
            delay = await (self._reminders() if item == REMINDERS else self._lane(item))
        finally:
            self._next[item] = time.monotonic() + delay
            self._busy.discard(item)
            self.wake_in(delay)

    def _render(self, channel: str, text: str) -> list[dict[str, object]]:
        rendered = self._channels[channel].render([Reply(text=text)], {})
        return [dict(body) for body in rendered.bodies]

    async def _turns(self, pacers: list[Pacer], wanted: int) -> int:
        """Take up to `wanted` turns of every pacer within the move's time."""
        deadline = time.monotonic() + self.options.move_seconds
        taken = 0
        while taken < wanted:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            waits = [await pacer.wait(None, left) for pacer in pacers]
            if any(wait > 0 for wait in waits):
                break
            taken += 1
        return taken

    def _look(self, lane: str) -> tuple[list[delivery.ActiveBatch], int]:
        """Settle finished rows; the batches to feed and the lane's free window."""
        now = utcnow()
        with self._sessions() as session:
            for batch_id in delivery.published_batches(session):
                delivery.settle(session, batch_id, now)
            session.commit()
            active = delivery.active_batches(session)
            waiting = delivery.bulk_in_outbox(session).get(lane, 0)
        return active, self.window(lane) - waiting

    def _move(self, lane: str, active: list[delivery.ActiveBatch], limit: int) -> int:
        """One transaction: up to `limit` rows of the oldest batches."""
        now = utcnow()
        moved = 0
        with self._sessions() as session:
            try:
                for batch in active:
                    fed = delivery.feed_announcements(
                        session,
                        batch,
                        lane,
                        limit - moved,
                        now,
                        self._render,
                        self._key,
                        simulated_only=lane not in self._providers,
                    )
                    moved += fed.queued + fed.skipped
                    if moved >= limit:
                        break
                session.commit()
            except delivery.FeedConflictError:
                session.rollback()
                log.info("announce: rows taken by another process, looked again")
                return 0
        return moved

    async def _lane(self, lane: str) -> float:
        active, free = await in_thread(self._look, lane)
        if not active:  # look soon while rows are in flight (to settle them)
            waiting = free < self.window(lane)
            return self.options.busy_look if waiting else self.options.idle_look
        if free <= 0:
            return self.options.busy_look
        chunk = max(1, math.ceil(self.rates[lane] * self.options.move_seconds))
        turns = await self._turns([self._pacers[lane]], min(free, chunk))
        if turns == 0:
            return 0.0
        moved = await in_thread(self._move, lane, active, turns)
        if moved:
            self.moved += moved
            self._on_outbox()
        return 0.0 if moved >= turns else self.options.busy_look

    def _reminders_due(self) -> int:
        """Due reminders (up to one move's worth) that the window has room for."""
        now = utcnow()
        with self._sessions() as session:
            waiting = delivery.bulk_in_outbox(session)
            free = min(self.window(lane) - waiting.get(lane, 0) for lane in LANES)
            if free <= 0:
                return 0
            return delivery.reminders_due(session, now, free)

    def _feed_reminders(self, limit: int) -> int:
        now = utcnow()
        with self._sessions() as session:
            fed = delivery.feed_reminders(session, now, limit, self._render, self._key)
            session.commit()
        return fed.queued + fed.skipped

    async def _reminders(self) -> float:
        """Due reminders: each may go to both lanes, so a turn of both."""
        due = await in_thread(self._reminders_due)
        if due == 0:
            return self.options.idle_look
        chunk = max(1, math.ceil(min(self.rates.values()) * self.options.move_seconds))
        turns = await self._turns(list(self._pacers.values()), min(due, chunk))
        if turns == 0:
            return 0.0
        moved = await in_thread(self._feed_reminders, turns)
        if moved:
            self.moved += moved
            self._on_outbox()
        return 0.0
