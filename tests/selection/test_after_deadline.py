"""After the announcement (issue 11, point 4): a selected member's reminders go
out 7 and 2 days before the purchase deadline through the outbox, once each;
the agents' registration panel shows the result with the deadline and each
reminder's state, and after the deadline the panel and the next step say the
card was revoked (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.console import labels
from bot.console.panel import Panel, registration_panel
from bot.messages.models import OutboxMessage
from bot.registry.models import RESULT_SELECTED, BatchMembership
from bot.selection import delivery
from tests.selection.test_delivery import KEY, PUBLISHED, _published, render


def test_reminders_then_the_revoked_card_in_the_agents_panel(
    sessions: sessionmaker, session: Session
) -> None:
    setup = _published(session, sessions)
    reachable = {setup["people"][name].id for name in ("sms", "new", "tg")}
    selected = (
        session.execute(
            select(BatchMembership).where(
                BatchMembership.result == RESULT_SELECTED,
                BatchMembership.applicant_id.in_(reachable),
            )
        )
        .scalars()
        .first()
    )
    assert selected is not None and selected.purchase_deadline is not None
    person, deadline = selected.applicant_id, selected.purchase_deadline
    shown = f"beli pelatihan sebelum {labels.wib(deadline)} WIB"

    def panel_at(moment: datetime) -> Panel:
        found = registration_panel(session, person, moment)
        assert found is not None
        return found

    told = panel_at(PUBLISHED)
    assert told.batches == (f"Gelombang 1: lolos, {shown}",)
    assert told.reminders == (
        f"7 hari sebelum batas ({labels.wib(deadline - timedelta(days=7))} WIB): "
        "terjadwal",
        f"2 hari sebelum batas ({labels.wib(deadline - timedelta(days=2))} WIB): "
        "terjadwal",
    )
    assert told.next_action.startswith("beli pelatihan pertamamu sebelum")

    texts: list[str] = []
    for days in (7, 2):
        due = deadline - timedelta(days=days)
        assert delivery.reminders_due(session, due - timedelta(minutes=1), 10) == 0
        fed = delivery.feed_reminders(session, due, 10, render, KEY)
        session.commit()
        bodies = session.execute(
            select(OutboxMessage.body).where(OutboxMessage.id.in_(fed.outbox_ids))
        ).scalars()
        texts += [body["text"] for body in bodies]
        again = delivery.feed_reminders(session, due, 10, render, KEY)
        assert (again.queued, again.skipped) == (0, 0), "each reminder goes once"
        reminders = panel_at(due).reminders
        assert reminders[(7, 2).index(days)].endswith(": terkirim")
    assert any(text.startswith("Pengingat Prakerja: 7 hari") for text in texts)
    assert any(text.startswith("Pengingat Prakerja: 2 hari") for text in texts)

    last_minute = panel_at(deadline - timedelta(minutes=1))
    assert last_minute.batches == (f"Gelombang 1: lolos, {shown}",)
    late = panel_at(deadline)
    assert late.batches == (
        f"Gelombang 1: lolos, dicabut (batas beli pelatihan "
        f"{labels.wib(deadline)} WIB lewat)",
    )
    assert late.next_action.startswith("Kartu Prakerja-mu dicabut")
