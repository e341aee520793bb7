"""Tables of privacy: the audit of erasures, the purge queue, the token vault.

- `erasure_record`: one erasure (asked for in the chat, or by the retention job)
  and what it removed, by table. It is the audit the law asks for and holds no
  personal data: the applicant's internal id (whose row no longer exists), the
  channel kind, the reason and counts.
- `privacy_purge`: conversations whose transcript and Rasa tracker events are
  still to be purged. Rasa saves a turn's events after the action that erased
  them, so the gateway purges them a little later (`not_before`); the row (a
  pseudonym) is deleted once done.
- `lifetime_participant` (`bot.registry.participants`): a keyed hash of the NIK
  of an erased participant, so the once-per-lifetime rule still holds.

- `personal_token`: the token vault: one value a person typed (or an action
  validated) in one conversation, under an opaque token that stands for it in
  the text, slots and entities Rasa keeps. Rows expire (`expires_at`) and go
  with their conversation.

Timestamps are naive UTC (`bot.db.utcnow`), as everywhere else.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)

from bot.db import Base, utcnow
from bot.messages.models import JsonType
from bot.registry import participants  # noqa: F401  (lifetime_participant)

REASON_REQUEST = "request"
REASON_RETENTION = "retention"
ERASURE_REASONS = (REASON_REQUEST, REASON_RETENTION)


class ErasureRecord(Base):
    """The audit of one erasure: when, why, what was removed; no personal data."""

    __tablename__ = "erasure_record"
    __table_args__ = (
        CheckConstraint(
            "reason IN ('request', 'retention')", name="ck_erasure_record_reason"
        ),
        Index("ix_erasure_record_at", "erased_at"),
        Index("ix_erasure_record_applicant", "applicant_id"),
    )

    id = Column(Integer, primary_key=True)
    reason = Column(String(16), nullable=False)
    applicant_id = Column(Integer)
    """The erased applicant's former id (no foreign key: the row is gone)."""
    channel = Column(String(16))
    erased_at = Column(DateTime, nullable=False, default=utcnow)
    purged_at = Column(DateTime)
    """When the transcripts and tracker events were purged as well."""
    removed = Column(JsonType, nullable=False, default=dict)
    """Rows or files removed, by table ({"applicant": 1, "inbox_message": 7})."""


class PrivacyPurge(Base):
    """A conversation whose transcript and tracker events are still to purge."""

    __tablename__ = "privacy_purge"
    __table_args__ = (Index("ix_privacy_purge_due", "not_before"),)

    id = Column(Integer, primary_key=True)
    erasure_id = Column(Integer)
    pseudonym = Column(String(64), nullable=False)
    conversation_id = Column(Integer)
    not_before = Column(DateTime, nullable=False)


class PersonalToken(Base):
    """One personal value of one conversation behind its token."""

    __tablename__ = "personal_token"
    __table_args__ = (
        UniqueConstraint("conversation_id", "token", name="uq_personal_token"),
        Index("ix_personal_token_expires", "expires_at"),
    )

    id = Column(Integer, primary_key=True)
    conversation_id = Column(
        Integer, ForeignKey("conversation.id", ondelete="CASCADE"), nullable=False
    )
    token = Column(String(64), nullable=False)
    kind = Column(String(16), nullable=False)
    value = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False)
    expires_at = Column(DateTime, nullable=False)
