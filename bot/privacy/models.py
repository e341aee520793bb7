"""The token vault's table: personal data that Rasa only ever sees as tokens.

Each row is one value a person typed (or an action validated) in one
conversation, under an opaque token that stands for it in the text, slots and
entities Rasa keeps. Rows expire (`expires_at`) and go with their conversation.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)

from bot.db import Base


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
