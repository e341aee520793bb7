"""Gateway processes wake each other: work stored through one is taken up by
another at once, not at its next poll (PostgreSQL LISTEN/NOTIFY,
`bot.gateway.wakeups`).

Both runtimes poll only every 30 s here, so a claim within a second or two can
only come from a wakeup. The bounds are far above the expected latency (tens of
milliseconds) and far below the poll interval.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bot.channels.base import TELEGRAM, InboundMessage
from bot.gateway.runtime import Gateway
from bot.gateway.wakeups import INBOX, NIK_CHECKS, OUTBOX
from bot.messages.inbox import store_inbound
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import (
    FAST,
    PSEUDONYM_KEY,
    Db,
    make_settings,
    running,
    wait_until,
)
from tests.gateway.fake_actions import FakeActionServer

SLOW_POLL = dataclasses.replace(FAST, poll_interval=30.0, listen_poll_interval=30.0)
WAKE_BOUND = 3.0
"""Seconds within which the other process must take the message (poll: 30 s)."""


def _gateway(client: Any) -> Gateway:
    gateway: Gateway = client.app.state.gateway
    return gateway


def _send(client: Any, user: str, text: str) -> float:
    response = client.post(
        "/simulator/api/send", json={"channel": TELEGRAM, "user": user, "text": text}
    )
    assert response.status_code == 200, response.text
    return time.monotonic()


def _answered_at(rasa: FakeRasa, text: str) -> float | None:
    for received in rasa.received:
        if received.message == text:
            return received.at
    return None


def test_a_message_stored_by_one_process_wakes_the_other(
    tmp_path: Path, rasa: FakeRasa, actions: FakeActionServer, postgres_url: str
) -> None:
    settings = make_settings(
        tmp_path, rasa.url, database_url=postgres_url, actions_url=actions.url
    )
    with running(settings, SLOW_POLL) as first, running(settings, SLOW_POLL) as second:
        _gateway(first).worker.pause(600)  # only the second process may take it
        wait_until(
            lambda: _gateway(second).wakeups.listening,
            timeout=10,
            what="the second process listening",
        )
        for attempt in range(3):
            text = f"halo {attempt}"
            stored = _send(first, f"orang{attempt}", text)
            answered = wait_until(
                lambda text=text: _answered_at(rasa, text),
                timeout=WAKE_BOUND + 2,
                what="the other process answering",
            )
            latency = answered - stored
            print(f"stored by one process, at Rasa through the other: {latency:.3f}s")
            assert latency < WAKE_BOUND, "taken at a poll, not woken"


def test_a_row_inserted_by_another_program_wakes_the_loops(
    tmp_path: Path, rasa: FakeRasa, actions: FakeActionServer, postgres_url: str
) -> None:
    """An INSERT by another program (as the action server queues NIK checks and
    internal events) wakes the gateway through the trigger's NOTIFY: nothing in
    this process was told."""
    settings = make_settings(
        tmp_path, rasa.url, database_url=postgres_url, actions_url=actions.url
    )
    with running(settings, SLOW_POLL) as client:
        gateway = _gateway(client)
        wait_until(lambda: gateway.wakeups.listening, timeout=10, what="listening")
        db = Db(postgres_url)
        try:
            with db.sessions() as session:
                triggers = session.execute(
                    text("SELECT tgrelid::regclass::text FROM pg_trigger")
                ).scalars()
                assert {INBOX, OUTBOX, NIK_CHECKS} <= set(triggers)
                message = InboundMessage(
                    channel=TELEGRAM,
                    provider_id="elsewhere-1",
                    address="777",
                    text="dari luar",
                    simulated=True,
                )
                assert store_inbound(session, message, PSEUDONYM_KEY)
                session.commit()
            stored = time.monotonic()
        finally:
            db.close()
        answered = wait_until(
            lambda: _answered_at(rasa, "dari luar"),
            timeout=WAKE_BOUND + 2,
            what="the gateway answering",
        )
        assert answered - stored < WAKE_BOUND, "taken at a poll, not woken"
        assert gateway.wakeups.notifications >= 1


def test_sqlite_has_no_listener_and_still_answers(
    tmp_path: Path, rasa: FakeRasa, actions: FakeActionServer
) -> None:
    settings = make_settings(tmp_path, rasa.url, actions_url=actions.url)
    with running(settings, SLOW_POLL) as client:
        assert not _gateway(client).wakeups.listening
        stored = _send(client, "orang", "halo")
        answered = wait_until(lambda: _answered_at(rasa, "halo"), what="an answer")
        assert answered - stored < WAKE_BOUND, "in-process wakeups as before"


def test_the_listener_reconnects_and_polls_fast_meanwhile(
    tmp_path: Path, rasa: FakeRasa, actions: FakeActionServer, postgres_url: str
) -> None:
    settings = make_settings(
        tmp_path, rasa.url, database_url=postgres_url, actions_url=actions.url
    )
    options = dataclasses.replace(FAST, poll_interval=0.05, listen_poll_interval=2.0)
    with running(settings, options) as client:
        gateway = _gateway(client)
        wait_until(lambda: gateway.wakeups.listening, timeout=10, what="listening")
        assert gateway.worker.poll_interval == 2.0, "relaxed while listening"
        polled: list[float] = []
        engine = create_engine(postgres_url, future=True)
        try:
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() "
                        "AND query = 'LISTEN prakerja_work'"
                    )
                )

            def fast_then_listening() -> bool:
                if not gateway.wakeups.listening:
                    polled.append(gateway.worker.poll_interval)
                return bool(polled) and gateway.wakeups.listening

            wait_until(fast_then_listening, timeout=15, what="a reconnect")
        finally:
            engine.dispose()
        assert 0.05 in polled, "polled at poll_interval while not listening"
        assert gateway.worker.poll_interval == 2.0
        stored = _send(client, "orang", "lagi")
        answered = wait_until(lambda: _answered_at(rasa, "lagi"), what="an answer")
        assert answered - stored < WAKE_BOUND
