"""Agents see "data dihapus" instead of the case card of an erased person, and
nothing can be revealed any more."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.privacy.erasure import erase_person
from tests.console.conftest import (
    KK,
    NIK,
    SMS_PHONE,
    Console,
    backend,
    cheap_hashing,
    console,
    settings,
)
from tests.gateway.conftest import actions, rasa

__all__ = ["actions", "backend", "cheap_hashing", "console", "rasa", "settings"]


def test_an_erased_persons_ticket_shows_data_dihapus(console: Console) -> None:
    supervisor = console.login(console.agent("sari", role="supervisor"))
    applicant = console.applicant()
    ticket = console.ticket(applicant_id=applicant, texts=(f"nik saya {NIK} kk {KK}",))
    before = console.get(supervisor, f"/console/tickets/{ticket.id}")
    assert "3174********0001" in before.text

    def erase(session: Session) -> None:
        erase_person(session, b"secret", applicant_id=applicant, now=utcnow())

    console.run(erase)

    page = console.get(supervisor, f"/console/tickets/{ticket.id}")
    assert page.status_code == 200
    assert "Data dihapus" in page.text
    for gone in ("3174********0001", "Budi Santoso", "Percakapan ini belum"):
        assert gone not in page.text
    refused = console.post_json(
        supervisor, f"/console/tickets/{ticket.id}/reveal", {"field": "nik"}
    )
    assert refused.status_code == 410
    assert SMS_PHONE not in refused.text
