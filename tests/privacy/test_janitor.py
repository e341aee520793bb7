"""The gateway's privacy loop purges erased conversations and expired tokens,
and keeps going."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from bot.privacy.erasure import PURGE_DELAY, erase_person
from bot.privacy.janitor import PrivacyJanitor
from bot.privacy.models import PersonalToken, PrivacyPurge
from bot.privacy.vault import TOKEN_TTL, Vault
from tests.privacy.conftest import Person, leftovers
from tests.registration.conftest import SECRET, START


def _janitor(
    sessions: sessionmaker,
    tracker: Engine,
    mail_dir: Path,
    clock: Callable[[], datetime],
) -> PrivacyJanitor:
    """A janitor turning every 20 ms, its retention sweep hourly."""
    return PrivacyJanitor(
        sessions,
        SECRET,
        retention_days=365,
        tracker=tracker,
        outbox_dir=mail_dir,
        purge_interval=0.02,
        retention_interval=3600.0,
        clock=clock,
    )


async def test_the_loop_purges_what_is_due_then_stops(
    sessions: sessionmaker,
    engine: Engine,
    tracker: Engine,
    mail_dir: Path,
    person: Person,
) -> None:
    with sessions() as session, session.begin():
        erase_person(session, SECRET, applicant_id=person.applicant_id, now=START)
    janitor = _janitor(sessions, tracker, mail_dir, lambda: START + PURGE_DELAY)
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


async def test_the_loop_deletes_expired_tokens_even_when_a_purge_fails(
    sessions: sessionmaker,
    tracker: Engine,
    mail_dir: Path,
    person: Person,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [START]
    vault = Vault(sessions, clock=lambda: now[0])
    old = vault.keep(person.pseudonym, "nik", "3174011508900001")
    now[0] = START + TOKEN_TTL - timedelta(hours=1)
    live = vault.keep(person.pseudonym, "email", "budi@example.com")
    assert old and live
    now[0] = START + TOKEN_TTL + timedelta(seconds=1)

    janitor = _janitor(sessions, tracker, mail_dir, lambda: now[0])

    def purge() -> int:
        raise RuntimeError("database gone")

    monkeypatch.setattr(janitor, "purge", purge)

    def tokens() -> list[str]:
        with sessions() as session:
            return list(session.execute(select(PersonalToken.token)).scalars())

    task = asyncio.create_task(janitor.run())
    with caplog.at_level(logging.ERROR, logger="bot.privacy.janitor"):
        for _ in range(200):
            if tokens() == [live]:
                break
            await asyncio.sleep(0.05)
        janitor.stop()
        await asyncio.wait_for(task, 5)
    assert tokens() == [live]
    assert vault.reveal(person.pseudonym, live) == "budi@example.com"
    assert "privacy janitor purge failed: RuntimeError" in caplog.text


async def test_a_failed_retention_sweep_is_tried_again_at_the_next_turn(
    sessions: sessionmaker,
    tracker: Engine,
    mail_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    janitor = _janitor(sessions, tracker, mail_dir, lambda: START)
    sweeps: list[str] = []
    turns: list[int] = []

    def retain() -> dict[str, int]:
        sweeps.append("failed" if not sweeps else "done")
        if len(sweeps) == 1:
            raise RuntimeError("tracker store unreachable")
        return {}

    def purge() -> int:
        turns.append(1)
        if len(turns) >= 6:
            janitor.stop()
        return 0

    monkeypatch.setattr(janitor, "retain", retain)
    monkeypatch.setattr(janitor, "purge", purge)
    await asyncio.wait_for(janitor.run(), 10)
    assert len(turns) == 6
    assert sweeps == ["failed", "done"]  # then not before the hour is up
