"""Tables of the gateway: conversations, the inbox, the outbox and early delivery
statuses.

`Conversation.address` (Telegram chat id, phone number) is personal data, kept only
because replies must reach it; everything that leaves the gateway (Rasa, logs) uses
the pseudonym instead.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from bot.db import Base, utcnow

JsonType = JSON().with_variant(JSONB(), "postgresql")

INBOX_PENDING = "pending"
INBOX_DONE = "done"
INBOX_FAILED = "failed"
INBOX_SKIPPED = "skipped"
"""Stored but never handed to Rasa: the person already had the most messages
waiting that one conversation may have (`bot.messages.inbox`)."""

OUTBOX_PENDING = "pending"
OUTBOX_SENT = "sent"
OUTBOX_FAILED = "failed"
OUTBOX_DELIVERED = "delivered"
OUTBOX_UNDELIVERED = "undelivered"
OUTBOX_UNKNOWN = "unknown"
"""The send may or may not have reached the person, and cannot be looked up
(Telegram): not repeated, counted, visible to operators."""

RECONCILED_FOUND = "found"
RECONCILED_RESENT = "resent"
RECONCILED_GIVEN_UP = "given_up"
RECONCILIATIONS = (RECONCILED_FOUND, RECONCILED_RESENT, RECONCILED_GIVEN_UP)
"""How a send with an unknown outcome ended: the provider had it (its id was
adopted), the provider provably had not (sent again), or nobody can tell."""

AUTHOR_BOT = "bot"
AUTHOR_AGENT = "agent"
AUTHOR_SYSTEM = "system"
AUTHORS = (AUTHOR_BOT, AUTHOR_AGENT, AUTHOR_SYSTEM)
"""Who wrote an outbox message: the assistant (Rasa, or the channel's own local
replies), an agent in the console, or the gateway itself (queue updates)."""
PRIORITY_LIVE = 0
PRIORITY_BULK = 1
"""`OutboxMessage.priority`: a reply to someone talking, or bulk (an
announcement, a reminder); the outbox claims live rows first."""
OPTED_OUT = "opted out"
"""The outbox error of a reply never sent: the person opted out (SMS STOP)."""


class Conversation(Base):
    """One person on one channel, with the channel's state and a processing lease."""

    __tablename__ = "conversation"
    __table_args__ = (
        UniqueConstraint("channel", "address", name="uq_conversation_address"),
        UniqueConstraint("pseudonym", name="uq_conversation_pseudonym"),
    )

    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    address = Column(String(128), nullable=False)
    pseudonym = Column(String(64), nullable=False)
    simulated = Column(Boolean, nullable=False, default=False)
    opted_out = Column(Boolean, nullable=False, default=False)
    state = Column(JsonType, nullable=False, default=dict)
    lease_owner = Column(String(64))
    lease_until = Column(DateTime)
    lease_token = Column(Integer)
    """The fencing token of the current claim (`bot.leases`)."""
    not_before = Column(DateTime)
    wait_notice_upto = Column(Integer)
    """The last inbox id covered by the latest wait notice (`bot.gateway.
    wait_notice`): a new notice only once every message it covered is answered."""
    overflow_notice_upto = Column(Integer)
    """The same for the notice that messages beyond the cap are not read."""
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class InboxMessage(Base):
    """A message from a person, stored before the provider is acknowledged."""

    __tablename__ = "inbox_message"
    __table_args__ = (
        UniqueConstraint("channel", "provider_id", name="uq_inbox_provider_id"),
        Index("ix_inbox_conversation_status", "conversation_id", "status", "id"),
        Index("ix_inbox_status_conversation", "status", "conversation_id"),
    )

    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    provider_id = Column(String(128), nullable=False)
    conversation_id = Column(
        Integer, ForeignKey("conversation.id", ondelete="CASCADE"), nullable=False
    )
    text = Column(Text, nullable=False, default="")
    payload = Column(Text)
    event = Column(JsonType)
    user_name = Column(String(128))
    status = Column(String(16), nullable=False, default=INBOX_PENDING)
    attempts = Column(Integer, nullable=False, default=0)
    last_error = Column(Text)
    received_at = Column(DateTime, nullable=False, default=utcnow)
    processed_at = Column(DateTime)
    chat_message_id = Column(BigInteger)
    """Telegram's id of the person's message in the chat (of the button's
    message, for a button press); None elsewhere."""


class OutboxMessage(Base):
    """A rendered reply, stored before it is sent; sent in order per conversation.

    `author` says who wrote it (`AUTHORS`), so the console shows bot, agent and
    system turns apart. `send_started_at` is committed before the provider is
    called and cleared when the outcome is known: a row claimed with it set had a
    send whose outcome is unknown, reconciled before it is repeated; `reconciled`
    is how that ended (`RECONCILIATIONS`)."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        UniqueConstraint("inbox_id", "seq", name="uq_outbox_inbox_seq"),
        Index("ix_outbox_conversation_status", "conversation_id", "status", "id"),
        Index("ix_outbox_status_due", "status", "next_attempt_at"),
        Index("ix_outbox_message_provider_message_id", "provider_message_id"),
    )

    id = Column(Integer, primary_key=True)
    conversation_id = Column(
        Integer, ForeignKey("conversation.id", ondelete="CASCADE"), nullable=False
    )
    inbox_id = Column(Integer, ForeignKey("inbox_message.id", ondelete="SET NULL"))
    seq = Column(Integer, nullable=False, default=0)
    body = Column(JsonType, nullable=False)
    author = Column(
        String(16), nullable=False, default=AUTHOR_BOT, server_default=AUTHOR_BOT
    )
    agent_id = Column(Integer)
    """The agent who wrote it (author "agent"), else NULL."""
    ignore_opt_out = Column(Boolean, nullable=False, default=False)
    priority = Column(
        SmallInteger, nullable=False, default=PRIORITY_LIVE, server_default="0"
    )
    """`PRIORITY_LIVE` or `PRIORITY_BULK` (claimed after every due live row)."""
    status = Column(String(16), nullable=False, default=OUTBOX_PENDING)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime, nullable=False, default=utcnow)
    lease_owner = Column(String(64))
    lease_until = Column(DateTime)
    lease_token = Column(Integer)
    """The fencing token of the current claim (`bot.leases`)."""
    last_error = Column(Text)
    provider_message_id = Column(String(128))
    delivery_status = Column(String(32))
    error_code = Column(String(32))
    send_started_at = Column(DateTime)
    reconciled = Column(String(16))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class EarlyDeliveryStatus(Base):
    """A provider's delivery status that came before its message's id was stored.

    Kept in the database (not one process's memory) and applied, in arrival order,
    by whichever gateway process stores that provider id; old ones expire."""

    __tablename__ = "early_delivery_status"
    __table_args__ = (
        Index("ix_early_delivery_status_message", "provider_message_id"),
        Index("ix_early_delivery_status_received", "received_at"),
    )

    id = Column(Integer, primary_key=True)
    provider_message_id = Column(String(128), nullable=False)
    status = Column(String(32), nullable=False)
    error_code = Column(String(32))
    received_at = Column(DateTime, nullable=False, default=utcnow)
