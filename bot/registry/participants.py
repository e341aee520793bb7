"""Lifetime participants: the keyed hash of an erased participant's NIK, kept
so that a person can receive Kartu Prakerja once per lifetime even after their
registration was erased (`bot.privacy.erasure` writes it, registration reads
it)."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import CheckConstraint, Column, DateTime, String, bindparam, select
from sqlalchemy.orm import Session

from bot.db import Base, utcnow

HASH_LENGTH = 64  # hex HMAC-SHA256
PARTICIPANT_PURPOSE = b"lifetime-participant"


class LifetimeParticipant(Base):
    """The keyed hash of an erased participant's NIK (once per lifetime)."""

    __tablename__ = "lifetime_participant"
    __table_args__ = (
        CheckConstraint(
            f"length(nik_hash) = {HASH_LENGTH}", name="ck_lifetime_participant_hash"
        ),
    )

    nik_hash = Column(String(HASH_LENGTH), primary_key=True)
    recorded_at = Column(DateTime, nullable=False, default=utcnow)


def nik_hash(secret: bytes, nik: str) -> str:
    """The keyed hash kept for an erased participant's NIK (64 hex digits)."""
    key = hmac.new(secret, PARTICIPANT_PURPOSE, hashlib.sha256).digest()
    return hmac.new(key, nik.encode(), hashlib.sha256).hexdigest()


PARTICIPANT = select(LifetimeParticipant.nik_hash).where(
    LifetimeParticipant.nik_hash == bindparam("nik_hash")
)
"""An erased participant's kept hash (built once: asked at every submit)."""


def was_participant(session: Session, secret: bytes, nik: str) -> bool:
    """Whether an erased participant had this NIK (once per lifetime)."""
    found = session.execute(PARTICIPANT, {"nik_hash": nik_hash(secret, nik)}).first()
    return found is not None


def erased_participants(session: Session, secret: bytes, niks: list[str]) -> set[str]:
    """The NIKs among `niks` of participants whose data was erased (checked in
    chunks of 1,000 hashes)."""
    by_hash = {nik_hash(secret, nik): nik for nik in niks}
    hashes = list(by_hash)
    found: set[str] = set()
    for start in range(0, len(hashes), 1000):
        chunk = hashes[start : start + 1000]
        found.update(
            by_hash[digest]
            for digest in session.execute(
                select(LifetimeParticipant.nik_hash).where(
                    LifetimeParticipant.nik_hash.in_(chunk)
                )
            ).scalars()
        )
    return found
