"""Pacing of provider sends: in this process, or shared by every gateway process
through Redis.

The limits belong to the provider account, not to one process: Telegram takes
about 30 messages a second per bot and, in one chat, about one a second after a
short burst (groups: 20 a minute); Twilio takes a number of messages a second
per sender number (the account's MPS; more are queued at Twilio, late). With
`REDIS_URL` set, every process takes its turn from the same GCRA state in Redis
(`SharedRateLimiter`, throttled-py's GCRA: one Lua script call per limit), so N
processes together keep the limit; unset (`make run` on SQLite, one process),
`RateLimiter` paces within the process.

Both answer the same question, `wait(chat, max_wait)`: sleep until the send may
go and return 0.0, or, when that would take longer than `max_wait`, return the
wait instead (the outbox reschedules the row by it, without counting an
attempt). A Telegram `retry_after` for one chat is remembered in the process
(`pause`): the row that got it is rescheduled in the shared database, and the
chat's later rows wait behind it, so no other process sends to that chat
meanwhile. If Redis fails, the in-process limiter paces (logged at most once a
minute) and Redis is tried again 5 s later: sends go on, at worst N times
faster, and a provider's 429 still reschedules. Chat ids are hashed in Redis
keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.exceptions import RedisError
from throttled.asyncio import RedisStore, Throttled
from throttled.asyncio import rate_limiter as quotas
from throttled.constants import RateLimiterType
from throttled.exceptions import BaseThrottledError

log = logging.getLogger(__name__)

PACED = "paced by the rate limiter"
KEY_PREFIX = "prakerja:pace"
LONGEST_WAIT = 60.0
"""Seconds one wait lasts at most, whatever the caller accepts."""
WARN_EVERY = 60.0
"""Seconds between two warnings that Redis is unreachable."""
GROUP = 3.0
"""Seconds between two messages to one group chat (20 a minute)."""
REDIS_TIMEOUT = 1.0
"""Seconds one Redis call may take before the in-process limiter takes over."""
REDIS_RETRY = 5.0
"""Seconds the in-process limiter paces alone after Redis failed."""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Pacer(Protocol):
    """What a sender asks before each send."""

    @property
    def overall_interval(self) -> float:
        """Seconds between two sends at the overall rate."""
        ...

    async def wait(self, chat: str | None, max_wait: float = math.inf) -> float:
        """0.0 once a send to `chat` (None: no chat) may go, else the wait."""
        ...

    def pause(self, chat: str, seconds: float) -> None:
        """Remember a provider's retry_after for this chat."""
        ...

    def paused_for(self, chat: str) -> float:
        """Seconds left of this chat's retry_after, 0 when none."""
        ...


class RateLimiter:
    """Paces sends within one process: Telegram's limits, or (with no chat) a
    sender number's.

    By default about 30 messages a second overall, and in one chat one message a
    second after a short burst (groups: 20 a minute). Each wait is reserved before
    sleeping (GCRA), so concurrent senders queue fairly without a lock; a wait
    longer than the caller accepts is reserved not at all, but handed back.
    """

    def __init__(
        self,
        overall_per_second: float = 30.0,
        chat_interval: float = 1.0,
        chat_burst: int = 3,
        group_interval: float = 3.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        overall_burst: int = 5,
    ) -> None:
        self._overall_interval = 1.0 / overall_per_second
        self._overall_burst = overall_burst
        self._chat_interval = chat_interval
        self._group_interval = group_interval
        self._chat_burst = chat_burst
        self._clock = clock
        self._sleep = sleep
        self._overall_tat = 0.0
        self._chat_tat: dict[str, float] = {}
        self._paused: dict[str, float] = {}

    @staticmethod
    def _reserve(
        tat: float, interval: float, burst: int, earliest: float
    ) -> tuple[float, float]:
        """(when the send may go, not before `earliest`; the new tat)."""
        tat = max(tat, earliest)
        return max(earliest, tat - interval * (burst - 1)), tat + interval

    @property
    def overall_interval(self) -> float:
        """Seconds between two sends at the overall rate."""
        return self._overall_interval

    def paused_for(self, chat: str) -> float:
        """Seconds Telegram asked us to leave this chat alone, 0 when none."""
        remaining = self._paused.get(chat, 0.0) - self._clock()
        if remaining <= 0:
            self._paused.pop(chat, None)
            return 0.0
        return remaining

    def pause(self, chat: str, seconds: float) -> None:
        """Remember a retry_after for this chat."""
        self._paused[chat] = self._clock() + seconds

    async def wait(self, chat: str | None, max_wait: float = math.inf) -> float:
        """Sleep until a message to this chat (None: no chat) may be sent; 0.0.

        When that would take longer than `max_wait` seconds, reserve nothing, do
        not sleep, and return the wait instead (the caller retries later).
        """
        now = self._clock()
        start = now
        chat_tat = 0.0
        if chat is not None:
            self._forget_idle_chats()
            group = chat.startswith("-")
            interval = self._group_interval if group else self._chat_interval
            start, chat_tat = self._reserve(
                self._chat_tat.get(chat, 0.0), interval, self._chat_burst, now
            )
        start, overall_tat = self._reserve(
            self._overall_tat, self._overall_interval, self._overall_burst, start
        )
        delay = start - now
        if delay > max_wait:
            return delay
        if chat is not None:
            self._chat_tat[chat] = chat_tat
        self._overall_tat = overall_tat
        if delay > 0:
            await self._sleep(delay)
        return 0.0

    def _forget_idle_chats(self) -> None:
        if len(self._chat_tat) < 10_000:
            return
        now = self._clock()
        self._chat_tat = {c: t for c, t in self._chat_tat.items() if t > now}
        self._paused = {c: t for c, t in self._paused.items() if t > now}


class PacingStore:
    """The Redis that the processes' pacing shares (`REDIS_URL`); create it in
    the event loop that uses it, close it with `aclose`."""

    def __init__(self, url: str) -> None:
        self.store = RedisStore(
            server=url,
            options={
                "SOCKET_TIMEOUT": REDIS_TIMEOUT,
                "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT,
            },
        )

    async def aclose(self) -> None:
        """Close the connections (throttled-py has no public close)."""
        backend: Any = getattr(self.store, "_backend", None)
        client = getattr(backend, "_client", None)
        if client is not None:
            await client.close()
            await client.connection_pool.disconnect()


def _hashed(chat: str) -> str:
    return hashlib.blake2b(chat.encode(), digest_size=8).hexdigest()


class SharedRateLimiter:
    """Paces the sends of every process that names the same account (`name`:
    a bot, a sender number) through Redis: an overall rate and, per chat, one a
    second after a burst (groups: 20 a minute)."""

    def __init__(
        self,
        store: PacingStore,
        name: str,
        overall_per_second: int = 30,
        overall_burst: int = 5,
        chat_burst: int = 3,
        sleep: Sleep = asyncio.sleep,
        chat_per_second: int = 1,
    ) -> None:
        self._name = name
        self._sleep = sleep
        self._overall_per_second = overall_per_second

        def limit(quota: quotas.Quota) -> Throttled:
            return Throttled(
                using=RateLimiterType.GCRA.value,
                quota=quota,
                store=store.store,
                key_prefix=KEY_PREFIX,
            )

        self._overall = limit(quotas.per_sec(overall_per_second, overall_burst))
        self._chat = limit(quotas.per_sec(chat_per_second, chat_burst))
        self._group = limit(quotas.per_min(20, chat_burst))
        self._local = RateLimiter(
            overall_per_second=overall_per_second,
            chat_interval=1.0 / chat_per_second,
            chat_burst=chat_burst,
            overall_burst=overall_burst,
            sleep=sleep,
        )
        self._warned = -math.inf
        self._redis_down_until = -math.inf

    @property
    def overall_interval(self) -> float:
        """Seconds between two sends at the overall rate."""
        return 1.0 / self._overall_per_second

    def pause(self, chat: str, seconds: float) -> None:
        """Remember a provider's retry_after for this chat (in this process: the
        rescheduled row holds the chat back for the others)."""
        self._local.pause(chat, seconds)

    def paused_for(self, chat: str) -> float:
        """Seconds left of this chat's retry_after, 0 when none."""
        return self._local.paused_for(chat)

    async def wait(self, chat: str | None, max_wait: float = math.inf) -> float:
        """Sleep until a send to `chat` (None: no chat) may go and return 0.0;
        when that would take longer than `max_wait`, return the wait at once."""
        deadline = time.monotonic() + min(max_wait, LONGEST_WAIT)
        if time.monotonic() < self._redis_down_until:
            return await self._local.wait(chat, max_wait)
        try:
            if chat is not None:
                group = chat.startswith("-")
                limit = self._group if group else self._chat
                key = f"{self._name}:chat:{_hashed(chat)}"
                delay = await self._take(limit, key, deadline, GROUP if group else 1.0)
                if delay > 0:
                    return delay
            return await self._take(
                self._overall, self._name, deadline, self.overall_interval
            )
        except (BaseThrottledError, RedisError, OSError) as exc:
            self._redis_down_until = time.monotonic() + REDIS_RETRY
            self._warn(exc)
            left = max(0.0, deadline - time.monotonic())
            return await self._local.wait(chat, left)

    async def _take(
        self, limit: Throttled, key: str, deadline: float, interval: float
    ) -> float:
        """One turn of `limit` for `key`: 0.0 once taken, else the wait left.

        GCRA in Redis reserves nothing ahead: every waiter looks again when the
        limit says, plus a random part of one `interval`, so waiters in several
        processes spread over the interval instead of all asking at once."""
        while True:
            result = await limit.limit(key)  # SOCKET_TIMEOUT bounds it
            if not result.limited:
                return 0.0
            retry = max(float(result.state.retry_after), 0.001)
            if time.monotonic() + retry > deadline:
                return retry
            await self._sleep(retry + random.uniform(0.0, interval))  # noqa: S311

    def _warn(self, error: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning(
                "pacing: Redis unreachable (%s); pacing within this process",
                type(error).__name__,
            )


def make_pacer(
    store: PacingStore | None,
    name: str,
    per_second: int,
    burst: int,
    chat_per_second: int = 1,
) -> Pacer:
    """The shared limiter for account `name` when Redis is configured, else an
    in-process one with the same limits (`chat_per_second`: one chat's rate
    after its burst)."""
    if store is None:
        return RateLimiter(
            overall_per_second=per_second,
            overall_burst=burst,
            chat_interval=1.0 / chat_per_second,
        )
    return SharedRateLimiter(
        store, name, per_second, burst, chat_per_second=chat_per_second
    )


def bot_id(token: str) -> str:
    """The bot's id, the part of its token before ":" (never the secret)."""
    return token.split(":", 1)[0]
