"""Several gateways on one PostgreSQL database: nothing handled twice, order kept.

Needs the PostgreSQL server of the test setup (postgresql://postgres@127.0.0.1:5432,
or TEST_POSTGRES_URL); each test creates and drops its own database. Skipped when
the server is unreachable, except under CI=true.
"""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from bot.channels import simulator
from bot.channels.base import TELEGRAM
from bot.messages.inbox import store_inbound
from bot.messages.models import Conversation
from bot.schema import upgrade
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import (
    PSEUDONYM_KEY,
    Db,
    FakeSender,
    make_settings,
    post_telegram,
    running,
    telegram_update,
    wait_until,
)
from tests.gateway.fake_actions import FakeActionServer

CONVERSATIONS = 50
MESSAGES = 5
BACKLOG = 2


def test_two_gateways_handle_every_message_once_and_in_order(
    tmp_path: Path, postgres_url: str, rasa: FakeRasa, actions: FakeActionServer
) -> None:
    rasa.jitter = 0.01
    settings = make_settings(tmp_path, rasa.url, postgres_url, actions.url)
    db = Db(postgres_url)
    upgrade(postgres_url)
    with db.sessions() as session:  # a backlog, as after an outage
        for number in range(BACKLOG):
            for user in range(CONVERSATIONS):
                message = simulator.inbound(TELEGRAM, f"u{user}", text=f"m{number}")
                assert store_inbound(session, message, PSEUDONYM_KEY)
        session.commit()
    with ExitStack() as stack:
        gateways = [stack.enter_context(running(settings)) for _ in range(2)]
        for number in range(BACKLOG, MESSAGES):  # and new messages meanwhile
            for user in range(CONVERSATIONS):
                client = gateways[(user + number) % 2]
                response = client.post(
                    "/simulator/api/send",
                    json={
                        "channel": TELEGRAM,
                        "user": f"u{user}",
                        "text": f"m{number}",
                    },
                )
                assert response.status_code == 200
        total = CONVERSATIONS * MESSAGES
        wait_until(
            lambda: sum(r.status == "delivered" for r in db.outbox()) == total,
            timeout=120,
            what="every reply",
        )
    inbox, outbox = db.inbox(), db.outbox()
    assert len(inbox) == total and all(row.status == "done" for row in inbox)
    assert all(row.attempts == 1 for row in inbox)
    assert Counter(row.inbox_id for row in outbox) == Counter(r.id for r in inbox)

    expected = [f"m{number}" for number in range(MESSAGES)]
    conversations = db.conversations()
    assert len(conversations) == CONVERSATIONS
    assert len(rasa.received) == total
    for conversation in conversations:
        assert rasa.messages(conversation.pseudonym) == expected
        rows = [r for r in outbox if r.conversation_id == conversation.id]
        texts = [r.body["text"] for r in sorted(rows, key=lambda r: r.sent_at)]
        assert texts == [f"Anda menulis: {m}" for m in expected]
        assert conversation.lease_owner is None
    db.close()


def test_a_redelivered_update_to_another_gateway_is_stored_once(
    tmp_path: Path, postgres_url: str, rasa: FakeRasa, actions: FakeActionServer
) -> None:
    settings = make_settings(tmp_path, rasa.url, postgres_url, actions.url)
    db = Db(postgres_url)
    senders = [FakeSender(TELEGRAM), FakeSender(TELEGRAM)]
    update = telegram_update(9001, 4242, "halo")
    with ExitStack() as stack:
        first, second = (
            stack.enter_context(running(settings, senders={TELEGRAM: sender}))
            for sender in senders
        )
        assert post_telegram(first, update).status_code == 200
        assert post_telegram(second, update).status_code == 200
        wait_until(lambda: sum(len(s.sent) for s in senders) == 1, what="one reply")
        assert post_telegram(second, update).status_code == 200
        wait_until(lambda: all(r.status == "done" for r in db.inbox()))
    assert len(db.inbox()) == 1
    assert len(db.all(Conversation)) == 1
    assert rasa.messages() == ["halo"]
    assert sum(len(s.sent) for s in senders) == 1
    db.close()
