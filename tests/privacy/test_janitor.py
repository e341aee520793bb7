"""The gateway's privacy loop purges erased conversations and keeps going."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from bot.privacy.erasure import PURGE_DELAY, erase_person
from bot.privacy.janitor import PrivacyJanitor
from bot.privacy.models import PrivacyPurge
from tests.privacy.conftest import Person, leftovers
from tests.registration.conftest import SECRET, START


async def test_the_loop_purges_what_is_due_then_stops(
    sessions: sessionmaker,
    engine: Engine,
    tracker: Engine,
    mail_dir: Path,
    person: Person,
) -> None:
    with sessions() as session, session.begin():
        erase_person(session, SECRET, applicant_id=person.applicant_id, now=START)
    janitor = PrivacyJanitor(
        sessions,
        SECRET,
        retention_days=365,
        tracker=tracker,
        outbox_dir=mail_dir,
        purge_interval=0.05,
        clock=lambda: START + PURGE_DELAY,
    )
    task = asyncio.create_task(janitor.run())

    def pending() -> int:
        with sessions() as session:
            return int(session.execute(select(func.count(PrivacyPurge.id))).scalar())

    for _ in range(200):
        if pending() == 0:
            break
        await asyncio.sleep(0.05)
    janitor.stop()
    await asyncio.wait_for(task, 5)
    assert pending() == 0
    assert leftovers(engine) == []
