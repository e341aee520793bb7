"""Marks that a send's request is leaving, so that a send with none provably never
reached its provider.

An outbox row is in doubt from the commit that leases it for a send (its
`send_started_at`) until its result is stored. A process killed in between
leaves the row with no result: its request may have reached the provider, or
never left (the process died while the row waited for the event loop, the
provider's pacing or the HTTP pool). A provider's "no such message" only
counts once the request cannot still be on its way (`REQUEST_IN_FLIGHT` after
it left, `bot.channels.base`): a reply that never left would hold its
conversation that long.

With `REDIS_URL` set, the outbox sets a mark in Redis for each request of the
providers' senders (Telegram, Twilio) once its connection is obtained, right
before its bytes are written (`bot.channels.request_tracing`; after pacing).
Soak run 33 found a mark set earlier, before the Twilio client built its
request, with the process killed in between: the takeover saw the mark and
Twilio's empty list, and waited 30 s. A
process that takes over a row in doubt asks for the mark: none, and the row is
sent again at once (it never left); a mark, and the provider is asked as before,
counting the request's time from the mark. A missing mark only proves it when
Redis cannot have lost it: the mark would still live (`MARK_TTL` after the
attempt) and Redis has not restarted since the attempt started (the run id it
had when the marks' epoch was written is still its run id). A mark is one `SET`
with an expiry per send, none deleted (in `bench.gateway --redis-url`
within the scatter of the gateway's CPU a message: docs/benchmarks.md).

If a mark cannot be set (Redis down), the outbox records that in the row itself
before sending (`UNMARKED`), and a takeover asks the provider as before; marks
are not tried again for `RETRY_AFTER` seconds. Without Redis (`make run`, one
process) nothing is marked and nothing changes. Redis must keep the marks it
acknowledged: no eviction of keys with an expiry (`maxmemory-policy`
`noeviction`, the default), and persistence that survives a crash (AOF with
`appendfsync always`) if a Redis crash in the same second as a gateway kill may
not repeat a message. Every gateway of a deployment must mark: a row left in
doubt by a process that does not (an older version during a rolling upgrade,
one started without `REDIS_URL`) has no mark either, and would be sent again
even if its request had left; upgrade from a version without marks with its
gateways stopped, or accept that risk for the rows in doubt at that moment.
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "prakerja:sending"
"""The marks' keys: `{prefix}:{outbox id}:{attempt}`, and `{prefix}:epoch`, Redis's
run id and the time from which its marks are known complete."""
MARK_TTL = 300
"""Seconds a mark lives: longer than any takeover takes to look for it (after
that Telegram's lookup needs no mark: its request cannot still be on its way)."""
CLOCK_MARGIN = 1.0
"""Seconds by which the gateways' clocks may differ."""
REDIS_TIMEOUT = 1.0
"""Seconds one Redis call may take."""
RETRY_AFTER = 5.0
"""Seconds during which marks are not tried after one failed."""


@dataclass(frozen=True)
class MarkCheck:
    """What the marks say of one attempt in doubt."""

    left_at: float | None = None
    """When its request was marked as leaving (Unix time), if it was."""
    never_left: bool = False
    """No mark, and none can have been lost: the request never left."""


def _epoch_seconds(moment: datetime) -> float:
    """Unix time of a naive UTC datetime."""
    return calendar.timegm(moment.timetuple()) + moment.microsecond / 1e6


def mark_key(prefix: str, outbox_id: int, attempt: datetime) -> str:
    """The key of the mark of `outbox_id`'s attempt that started at `attempt`
    (an attempt in doubt keeps its start across takeovers)."""
    return f"{prefix}:{outbox_id}:{int(_epoch_seconds(attempt) * 1e6)}"


class SendMarks:
    """The marks in Redis (`REDIS_URL`); create it in the event loop that uses it,
    `start` it before the first send, close it with `aclose`."""

    def __init__(
        self,
        url: str,
        ttl: int = MARK_TTL,
        prefix: str = KEY_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._prefix = prefix
        self._epoch_key = f"{prefix}:epoch"
        self._redis: Redis = Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        self._ttl = ttl
        self._clock = clock
        self._down_until = 0.0

    async def start(self) -> None:
        """Begin the marks' epoch unless one is running (logged if Redis is down:
        missing marks then prove nothing until it is back)."""
        try:
            await self._epoch_since()
        except (RedisError, OSError) as exc:
            log.warning("send marks: Redis unreachable (%s)", type(exc).__name__)

    async def mark(self, outbox_id: int, attempt: datetime) -> bool:
        """Mark the request of this attempt as leaving; False when Redis could not
        take it (the caller records that elsewhere before sending)."""
        if time.monotonic() < self._down_until:
            return False
        try:
            await self._redis.set(
                mark_key(self._prefix, outbox_id, attempt),
                repr(self._clock()),
                ex=self._ttl,
            )
        except (RedisError, OSError) as exc:
            self._down_until = time.monotonic() + RETRY_AFTER
            log.warning("send marks: Redis unreachable (%s)", type(exc).__name__)
            return False
        return True

    async def check(self, outbox_id: int, attempt: datetime) -> MarkCheck:
        """Whether the request of this attempt left (a mark), provably never left,
        or cannot be told (Redis may have lost the mark, or is down)."""
        try:
            value = await self._redis.get(mark_key(self._prefix, outbox_id, attempt))
            if value is not None:
                return MarkCheck(left_at=float(value))
            since = await self._epoch_since()
        except (RedisError, OSError, ValueError) as exc:
            log.warning("send marks: cannot check (%s)", type(exc).__name__)
            return MarkCheck()
        started = _epoch_seconds(attempt)
        complete = since <= started - CLOCK_MARGIN
        alive = self._clock() - started < self._ttl - CLOCK_MARGIN
        return MarkCheck(never_left=complete and alive)

    async def _epoch_since(self) -> float:
        """The time from which Redis holds every mark set: when the epoch began
        under its current run id (a restart may have lost marks: a new epoch
        begins now)."""
        run_id = str((await self._redis.info("server"))["run_id"])
        now = self._clock()
        await self._redis.set(self._epoch_key, f"{run_id} {now!r}", nx=True)
        stored = await self._redis.get(self._epoch_key)
        stored_run, _, since = (stored or b"").decode().partition(" ")
        if stored_run == run_id:
            return float(since)
        # written before a restart: marks of earlier attempts may be gone
        await self._redis.set(self._epoch_key, f"{run_id} {now!r}")
        return now

    async def aclose(self) -> None:
        """Close the connections."""
        await self._redis.close()
        await self._redis.connection_pool.disconnect()
