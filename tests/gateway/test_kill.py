"""kill -9 of a gateway process mid-turn: another process answers within seconds.

Two `python -m bot` processes share one PostgreSQL database and one fake Rasa,
which holds the first turn of the message "tahan" (so its process is mid-turn)
and answers every other turn at once. The test SIGKILLs the process holding
the conversation (its lease names its pid) and measures how long the other takes
to answer it: the killed process's heartbeat goes stale after 3 s, the lease is
taken over, the turn runs again and the replies go out, in order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.messages.models import OUTBOX_DELIVERED, Conversation, InboxMessage
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import PSEUDONYM_KEY, Db
from tests.gateway.fake_actions import FakeActionServer
from tests.integration.conftest import base_url, spawn_gateway, stop, wait_all
from tests.postgres import postgres_database

HELD = "tahan"
HOLD_LIMIT = 60.0
"""Seconds the held turn waits at most (the test releases it at the end)."""
RECOVERY_LIMIT = 5.0
"""Seconds after the kill within which the conversation must be answered."""
WAIT_LIMIT = 30.0
"""Bound on every other wait."""


class GatedRasa(FakeRasa):
    """A fake Rasa that holds the first turn of `HELD` until `release()`."""

    def __init__(self) -> None:
        super().__init__()
        self.held = threading.Event()
        self._released = threading.Event()
        self._holds = 0
        self._gate = threading.Lock()

    def release(self) -> None:
        """Let the held turn end (its process is gone by then)."""
        self._released.set()

    async def _gateway(self, request: Request) -> JSONResponse:
        data = await request.json()
        if data.get("message") == HELD:
            with self._gate:
                self._holds += 1
                hold = self._holds == 1
            if hold:
                self.held.set()
                deadline = time.monotonic() + HOLD_LIMIT
                while not self._released.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
        return await super()._gateway(request)


@pytest.fixture
def rasa() -> Iterator[GatedRasa]:
    """The gated fake Rasa."""
    fake = GatedRasa().start()
    yield fake
    fake.release()
    fake.stop()


def simulate(base: str, user: str, text: str) -> None:
    """Type a message in the simulator of the gateway at `base`."""
    response = httpx.post(
        f"{base}/simulator/api/send",
        json={"channel": "telegram", "user": user, "text": text},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def holder_pid(db: Db) -> int:
    """The pid in the lease owner of the (only) conversation."""
    with db.sessions() as session:
        owner = session.execute(select(Conversation.lease_owner)).scalar_one()
    assert owner, "the conversation is not leased"
    return int(str(owner).rsplit(":", 2)[1])


def replies(db: Db) -> list[str]:
    """The delivered replies' texts, in outbox order."""
    rows = db.outbox()
    return [str(row.body.get("text")) for row in rows if row.status == OUTBOX_DELIVERED]


def test_a_killed_gateway_conversation_is_answered_by_another_within_5_s(
    tmp_path: Path, rasa: GatedRasa
) -> None:
    actions = FakeActionServer().start()
    procs: dict[int, subprocess.Popen[bytes]] = {}
    try:
        with postgres_database("gateway_kill") as url:
            env = {
                "DATABASE_URL": url,
                "RASA_URL": rasa.url,
                "ACTIONS_URL": actions.url,
                "PSEUDONYM_KEY": PSEUDONYM_KEY,
                "GATEWAY_WORKERS": "4",
                "GATEWAY_SENDERS": "4",
            }
            starting = []
            for name in ("a", "b"):  # both start at once
                work = tmp_path / name
                work.mkdir()
                starting.append(spawn_gateway(work, env))
                procs[starting[-1].proc.pid] = starting[-1].proc
            wait_all(starting)
            bases = [base_url(one) for one in starting]
            db = Db(url)
            try:
                simulate(bases[0], "andi", HELD)
                assert rasa.held.wait(WAIT_LIMIT), "the turn never reached Rasa"
                simulate(bases[1], "andi", "dua")  # waits behind the held turn
                victim = holder_pid(db)
                assert victim in procs
                os.kill(victim, signal.SIGKILL)
                killed_at = time.monotonic()
                procs[victim].wait(timeout=WAIT_LIMIT)
                expected = [f"Anda menulis: {HELD}", "Anda menulis: dua"]
                while replies(db) != expected:
                    waited = time.monotonic() - killed_at
                    assert waited < WAIT_LIMIT, f"not answered: {replies(db)}"
                    time.sleep(0.05)
                recovery = time.monotonic() - killed_at
                print(f"recovery after kill -9: {recovery:.2f}s")
                assert recovery <= RECOVERY_LIMIT, f"answered after {recovery:.1f}s"
                survivor = next(pid for pid in procs if pid != victim)
                assert procs[survivor].poll() is None
                with db.sessions() as session:
                    statuses = session.execute(
                        select(InboxMessage.status).order_by(InboxMessage.id)
                    ).scalars()
                    assert list(statuses) == ["done", "done"]
                assert rasa.messages() == [HELD, "dua"], "in order, once each"
            finally:
                db.close()
                stop(*procs.values())
    finally:
        rasa.release()
        actions.stop()
