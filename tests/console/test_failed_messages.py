"""Supervisors see the messages the gateway gave up on (no text, no address)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.messages.models import INBOX_FAILED, InboxMessage
from tests.console.conftest import Console

SECRET_TEXT = "NIK saya 3174011508900001"
ERROR = "IncompleteTurnError: actions failed: action_submit_registration"


def test_supervisors_see_given_up_messages_without_their_text(
    console: Console,
) -> None:
    conversation = console.conversation("+6281299990001", texts=(SECRET_TEXT, "lama"))

    def give_up(db: Session) -> None:
        rows = db.query(InboxMessage).filter_by(conversation_id=conversation).all()
        recent, old = sorted(rows, key=lambda row: row.id)
        db.execute(
            update(InboxMessage)
            .where(InboxMessage.id == recent.id)
            .values(status=INBOX_FAILED, attempts=3, last_error=ERROR)
        )
        db.execute(  # given up two days ago: no longer listed
            update(InboxMessage)
            .where(InboxMessage.id == old.id)
            .values(
                status=INBOX_FAILED,
                last_error="RasaTurnError: HTTP 500",
                processed_at=utcnow() - timedelta(days=2),
            )
        )

    console.run(give_up)
    sari = console.login(console.agent("sari", "supervisor"))
    page = console.get(sari, "/console/supervisor").text
    assert 'id="failed-messages"' in page
    assert ERROR in page
    assert "HTTP 500" not in page
    assert "3174011508900001" not in page and "6281299990001" not in page
    andi = console.login(console.agent("andi"))
    assert console.get(andi, "/console/supervisor").status_code in (403, 404)


def test_the_section_says_when_nothing_was_given_up(console: Console) -> None:
    sari = console.login(console.agent("sari", "supervisor"))
    page = console.get(sari, "/console/supervisor").text
    assert 'id="failed-messages"' in page
    assert "Tidak ada pesan yang gagal" in page
