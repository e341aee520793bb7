"""The mail queue's table: e-mails stored in the transaction that decided them.

A row is written with the effect that needs the mail (an e-mail code issued), so
a crash between the database commit and the SMTP call (or the outbox-folder
write) loses no mail. The row is deleted once the mail is handed over; a mail
that failed for good keeps neither address nor body. The body of a code mail
holds the code in clear only while it waits, usually for a second.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, Index, Integer, String, Text

from bot.db import Base, utcnow

MAIL_QUEUED = "queued"
MAIL_FAILED = "failed"
ADDRESS_MAX = 254
SUBJECT_MAX = 200


class QueuedMail(Base):
    """One e-mail to hand to the mail server (or the local outbox folder)."""

    __tablename__ = "mail_queue"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'failed')", name="ck_mail_queue_status"),
        Index("ix_mail_queue_due", "status", "claimed_until"),
    )

    id = Column(Integer, primary_key=True)
    to_address = Column(String(ADDRESS_MAX))
    subject = Column(String(SUBJECT_MAX), nullable=False)
    body = Column(Text)
    status = Column(String(16), nullable=False, default=MAIL_QUEUED)
    attempts = Column(Integer, nullable=False, default=0)
    claimed_until = Column(DateTime)
    claimed_by = Column(String(64))
    """The lease owner (`bot.leases`) sending it: taken over once its heartbeat
    is stale."""
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
