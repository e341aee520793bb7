"""The gateway's privacy loop: purge erased conversations and expired tokens,
apply retention.

On each turn, `purge_interval` seconds after the last one ended, it purges the
conversations queued by erasures (`purge_due`: transcript rows and Rasa tracker
events) and the token vault's expired values (`bot.privacy.vault`: a NIK or an
e-mail kept for `TOKEN_TTL`); every `retention_interval` seconds it runs the
retention sweep (`run_retention`), which deletes expired tokens too.
Database work runs in a thread; an error is logged with its type only and the
loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.loops import describe_error
from bot.privacy.erasure import purge_due
from bot.privacy.retention import run_retention
from bot.privacy.vault import Vault

log = logging.getLogger(__name__)

PURGE_INTERVAL = 15.0
RETENTION_INTERVAL = 3600.0


class PrivacyJanitor:
    """Purges erased conversations and expired tokens, and applies the
    retention period."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        secret: bytes,
        *,
        retention_days: int,
        tracker: Engine | None,
        outbox_dir: Path | None,
        purge_interval: float = PURGE_INTERVAL,
        retention_interval: float = RETENTION_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`tracker`: Rasa's tracker store; `outbox_dir`: the local mail folder
        (None when mail goes over SMTP)."""
        self._sessions = sessions
        self._secret = secret
        self._days = retention_days
        self._tracker = tracker
        self._outbox_dir = outbox_dir
        self._purge_interval = purge_interval
        self._retention_interval = retention_interval
        self._clock = clock
        self._vault = Vault(sessions, clock)
        self._stopped = asyncio.Event()

    def purge(self) -> int:
        """Purge the conversations whose delay has passed (one transaction)."""
        with self._sessions() as session, session.begin():
            return purge_due(session, self._tracker, self._clock())

    def purge_tokens(self) -> int:
        """Delete the vault's expired tokens (one statement); how many."""
        return self._vault.purge()

    def retain(self) -> dict[str, int]:
        """One retention sweep."""
        return run_retention(
            self._sessions,
            self._secret,
            days=self._days,
            tracker=self._tracker,
            outbox_dir=self._outbox_dir,
            now=self._clock(),
        )

    async def run(self) -> None:
        """Loop until `stop`: purge erasures and expired tokens often, retain
        every retention interval."""
        loop = asyncio.get_running_loop()
        next_retention = loop.time()
        while not self._stopped.is_set():
            await self._step(self.purge)
            await self._step(self.purge_tokens)
            if loop.time() >= next_retention and await self._step(self.retain):
                next_retention = loop.time() + self._retention_interval
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._purge_interval)

    async def _step(self, job: Callable[[], object]) -> bool:
        """Run `job` in a thread; whether it succeeded. An error is logged and
        the next turn retries (one job failing does not hold up the others)."""
        try:
            await asyncio.to_thread(job)
        except Exception as exc:  # keep the loop alive
            name = getattr(job, "__name__", "job")
            log.error("privacy janitor %s failed: %s", name, describe_error(exc))
            return False
        return True

    def stop(self) -> None:
        """Ask the loop to end after its current step."""
        self._stopped.set()
