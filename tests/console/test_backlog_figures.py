"""Supervisors see the message backlog: waiting messages, conversations, the
oldest wait, the expected wait and the rate."""

from __future__ import annotations

import re

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.messages.models import INBOX_PENDING, InboxMessage
from tests.console.conftest import Console
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import wait_until


def _figure(page: str, label: str) -> str:
    found = re.search(rf"<dt>{label}</dt><dd>([^<]*)</dd>", page)
    return found.group(1) if found else ""


def test_supervisors_see_the_backlog_of_messages(
    console: Console, rasa: FakeRasa
) -> None:
    rasa.down()  # nothing is answered: the messages wait
    sari = console.login(console.agent("sari", "supervisor"))
    page = console.get(sari, "/console/supervisor").text
    assert 'id="message-backlog"' in page
    assert _figure(page, "Pesan menunggu") == "0"
    first = console.conversation("+6281299990001", texts=("halo", "lagi"))
    second = console.conversation("+6281299990002", texts=("tolong",))

    def wait(db: Session) -> None:
        db.execute(
            update(InboxMessage)
            .where(InboxMessage.conversation_id.in_((first, second)))
            .values(status=INBOX_PENDING, processed_at=None)
        )

    console.run(wait)

    def stalled() -> str:
        page = console.get(sari, "/console/supervisor").text
        return page if "tidak diketahui" in page else ""

    page = wait_until(stalled, timeout=15, what="the stall on the page")
    assert _figure(page, "Pesan menunggu") == "3"
    assert _figure(page, "Percakapan menunggu") == "2"
    assert _figure(page, "Pesan terlama menunggu").endswith("dtk")
    assert _figure(page, "Dijawab per menit") == "0"
    assert "6281299990001" not in page and "halo" not in page
