"""Tables written when a batch's results are published: one announcement message
per member and channel, and the notices due later (purchase-deadline reminders).

The batch's own lifecycle (`batch_run`) is in `bot.registry.models`. Timestamps
are naive UTC. No personal data is stored here: rows name ids and text keys.
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
    UniqueConstraint,
)

from bot.db import Base, utcnow
from bot.registry.models import _in

MESSAGE_PENDING = "pending"  # to be sent by the announcement sender
MESSAGE_QUEUED = "queued"  # handed to the gateway's outbox (`outbox_id`)
MESSAGE_SENT = "sent"
MESSAGE_DELIVERED = "delivered"
MESSAGE_FAILED = "failed"
MESSAGE_SKIPPED = "skipped"  # opted out (STOP) or no longer reachable
MESSAGE_STATUSES = (
    MESSAGE_PENDING,
    MESSAGE_QUEUED,
    MESSAGE_SENT,
    MESSAGE_DELIVERED,
    MESSAGE_FAILED,
    MESSAGE_SKIPPED,
)

NOTICE_PURCHASE_REMINDER = "purchase_reminder"
NOTICE_KINDS = (NOTICE_PURCHASE_REMINDER,)
NOTICE_PENDING = "pending"
NOTICE_SENT = "sent"
NOTICE_CANCELLED = "cancelled"
NOTICE_STATUSES = (NOTICE_PENDING, NOTICE_SENT, NOTICE_CANCELLED)

TEXT_KEY_MAX = 32


class AnnouncementMessage(Base):
    """One member's result message to one of their channels, to be sent."""

    __tablename__ = "announcement_message"
    __table_args__ = (
        UniqueConstraint(
            "membership_id", "identity_id", name="uq_announcement_message_member"
        ),
        CheckConstraint(
            _in("status", MESSAGE_STATUSES), name="ck_announcement_message_status"
        ),
        CheckConstraint("attempts >= 0", name="ck_announcement_message_attempts"),
        Index("ix_announcement_message_page", "batch_id", "status", "id"),
        Index("ix_announcement_message_lane", "batch_id", "channel", "status", "id"),
        Index("ix_announcement_message_outbox", "outbox_id"),
    )

    id = Column(Integer, primary_key=True)
    batch_id = Column(
        Integer, ForeignKey("batch.id", ondelete="CASCADE"), nullable=False
    )
    membership_id = Column(
        Integer, ForeignKey("batch_membership.id", ondelete="CASCADE"), nullable=False
    )
    applicant_id = Column(
        Integer, ForeignKey("applicant.id", ondelete="CASCADE"), nullable=False
    )
    identity_id = Column(
        Integer, ForeignKey("channel_identity.id", ondelete="CASCADE"), nullable=False
    )
    channel = Column(String(16), nullable=False)
    text_key = Column(String(TEXT_KEY_MAX), nullable=False)
    policy_version = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False, default=MESSAGE_PENDING)
    attempts = Column(Integer, nullable=False, default=0)
    outbox_id = Column(Integer)  # the gateway's outbox row, once handed over
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow)


class DueNotice(Base):
    """A message owed to a person at a later moment (e.g. a deadline reminder);
    `key` makes writing it again a no-op."""

    __tablename__ = "due_notice"
    __table_args__ = (
        UniqueConstraint("key", name="uq_due_notice_key"),
        CheckConstraint(_in("kind", NOTICE_KINDS), name="ck_due_notice_kind"),
        CheckConstraint(_in("status", NOTICE_STATUSES), name="ck_due_notice_status"),
        CheckConstraint(
            f"(status = '{NOTICE_PENDING}') = (done_at IS NULL)",
            name="ck_due_notice_done",
        ),
        Index("ix_due_notice_due", "status", "due_at"),
        Index("ix_due_notice_applicant", "applicant_id"),
    )

    id = Column(Integer, primary_key=True)
    key = Column(String(64), nullable=False)
    kind = Column(String(32), nullable=False)
    applicant_id = Column(
        Integer, ForeignKey("applicant.id", ondelete="CASCADE"), nullable=False
    )
    membership_id = Column(
        Integer, ForeignKey("batch_membership.id", ondelete="CASCADE"), nullable=False
    )
    days_before = Column(Integer, nullable=False)
    due_at = Column(DateTime, nullable=False)
    status = Column(String(16), nullable=False, default=NOTICE_PENDING)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    done_at = Column(DateTime)
