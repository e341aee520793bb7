"""The effect ledger's table: one row per (idempotency key, effect name).

The key is the turn's inbox id (the gateway sends it to Rasa, the actions pass
it on); the outcome is JSON and never holds personal data in clear (masked
values and ids only), so it can outlive an erasure.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, String, Text

from bot.db import Base, utcnow

KEY_MAX = 64
NAME_MAX = 64


class Effect(Base):
    """What one side effect of one turn gave, recorded with the effect itself."""

    __tablename__ = "effect"
    __table_args__ = (Index("ix_effect_created", "created_at"),)

    idempotency_key = Column(String(KEY_MAX), primary_key=True)
    name = Column(String(NAME_MAX), primary_key=True)
    outcome = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
