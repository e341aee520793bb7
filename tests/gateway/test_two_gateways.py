"""Two gateway runtimes on one PostgreSQL database keep each conversation's order.

Each person sends two messages at the same instant, one to each gateway. The
conversation lease lets only one process hand a conversation to Rasa at a time:
the turns of one person never overlap, each message reaches Rasa once, and in
the order the inbox stored them (its ids).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.channels.base import TELEGRAM
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import Db, make_settings, running, wait_until
from tests.gateway.fake_actions import FakeActionServer

PEOPLE = 12


@dataclass(frozen=True)
class Turn:
    """One Rasa turn: who, what, when it started and ended."""

    sender: str
    message: str
    start: float
    end: float


class TimedRasa(FakeRasa):
    """A fake Rasa that records when each turn starts and ends."""

    def __init__(self) -> None:
        super().__init__()
        self.turns: list[Turn] = []
        self._turns_lock = threading.Lock()

    async def _gateway(self, request: Request) -> JSONResponse:
        data = await request.json()
        start = time.monotonic()
        response = await super()._gateway(request)
        with self._turns_lock:
            self.turns.append(
                Turn(str(data["sender"]), str(data["message"]), start, time.monotonic())
            )
        return response


@pytest.fixture
def timed_rasa() -> Iterator[TimedRasa]:
    """A running timed fake Rasa with slow, jittered turns."""
    fake = TimedRasa()
    fake.default_delay = 0.05
    fake.jitter = 0.1
    fake.start()
    yield fake
    fake.stop()


def _simulate(client: object, user: str, text: str) -> None:
    response = client.post(  # type: ignore[attr-defined]
        "/simulator/api/send", json={"channel": TELEGRAM, "user": user, "text": text}
    )
    assert response.status_code == 200, response.text


def test_two_processes_keep_each_conversation_in_order(
    tmp_path: Path,
    timed_rasa: TimedRasa,
    actions: FakeActionServer,
    postgres_url: str,
) -> None:
    settings = make_settings(
        tmp_path, timed_rasa.url, database_url=postgres_url, actions_url=actions.url
    )
    db = Db(postgres_url)
    try:
        with running(settings) as first, running(settings) as second:
            for person in range(PEOPLE):
                barrier = threading.Barrier(2)
                user = f"orang{person}"

                def post(
                    client: object,
                    text: str,
                    user: str = user,
                    barrier: threading.Barrier = barrier,
                ) -> None:
                    barrier.wait(timeout=10)
                    _simulate(client, user, text)

                threads = [
                    threading.Thread(target=post, args=(first, f"{person}-a")),
                    threading.Thread(target=post, args=(second, f"{person}-b")),
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=20)
            wait_until(
                lambda: len(db.inbox()) == 2 * PEOPLE
                and all(row.status == "done" for row in db.inbox()),
                timeout=60,
                what="every message answered",
            )
        turns = list(timed_rasa.turns)
        stored: dict[int, list[str]] = {}
        for row in db.inbox():
            stored.setdefault(row.conversation_id, []).append(row.text)
        assert len(stored) == PEOPLE
        by_sender: dict[str, list[Turn]] = {}
        for turn in sorted(turns, key=lambda t: t.start):
            by_sender.setdefault(turn.sender, []).append(turn)
        assert len(by_sender) == PEOPLE
        expected = sorted(stored.values())
        assert sorted([t.message for t in ts] for ts in by_sender.values()) == expected
        for sender_turns in by_sender.values():
            earlier, later = sender_turns
            assert later.start >= earlier.end, "two turns of one person overlapped"
    finally:
        db.close()
