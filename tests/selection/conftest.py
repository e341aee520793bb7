"""Selection fixtures: the registry's databases (SQLite and PostgreSQL, built by
the migrations) and members who joined a batch, verified or not."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.registry import (
    ApplicantInfo,
    ensure_batch,
    get_or_create_identity,
    join_batch,
    link_identity,
    set_step,
)
from bot.registry.models import (
    LINK_REGISTRATION,
    STEP_DONE,
    STEP_NIK,
    STEP_PENDING,
    STEP_SELECTION,
)
from tests.registry.conftest import (  # noqa: F401  (fixtures)
    KK,
    database_url,
    engine,
    register,
    session,
    sessions,
)

OPENS = datetime(2026, 11, 1, 1, 0)
DURING = datetime(2026, 11, 5, 3, 0)
CLOSES = datetime(2026, 11, 14, 16, 59)


def open_batch(db: Session, number: int = 1, quota: int = 100) -> int:
    """Batch `number` (a fortnight from OPENS, shifted by number), committed."""
    shift = timedelta(days=14 * (number - 1))
    batch = ensure_batch(db, number, OPENS + shift, CLOSES + shift, quota)
    db.commit()
    return batch.id


def member(
    db: Session,
    serial: int,
    batch_id: int,
    *,
    verified: bool = True,
    kk: str = KK,
    at: datetime = DURING,
    channel: str = "sms",
    **extra: Any,
) -> ApplicantInfo:
    """A registered applicant with a linked channel who joined the batch."""
    applicant = register(db, serial, kk=kk, **extra)
    identity = get_or_create_identity(db, channel, f"+62812000{serial:05d}")
    link_identity(db, identity.id, applicant.id, LINK_REGISTRATION, now=at)
    if verified:
        set_step(db, applicant.id, STEP_NIK, STEP_DONE, now=at)
    join_batch(db, applicant.id, batch_id, now=at)
    set_step(db, applicant.id, STEP_SELECTION, STEP_PENDING, now=at)
    db.commit()
    return applicant
