"""Retention: remove conversations and personal data older than `RETENTION_DAYS`.

``python -m bot.privacy.retention`` runs it once; the gateway runs it every
hour (`bot.privacy.janitor`). Older than the period means:
- an applicant with no activity since the cutoff (its row, steps, batch
  memberships and linked conversations all older): erased as by a request
  (`erase_person`, reason "retention"), so the same rows go and the same
  audit row stays;
- a person's messages and the replies received before the cutoff (the
  conversation row too once nothing newer is left and no ticket is open), and
  unlinked channel identities, consents and e-mail codes created before it;
- Rasa tracker events before the cutoff, and local e-mail outbox files;
- the token vault's expired values (`TOKEN_TTL`; the gateway's privacy loop
  deletes them every 15 seconds, this sweep when no gateway runs).

It also removes effect-ledger records older than a week (`bot.effects`: no
turn is retried that late) and queued mails past their expiry; neither holds
personal data, so neither is counted in the erasure record.

Each sweep writes one `erasure_record` (reason "retention", counts only).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.db import make_engine, make_sessionmaker, utcnow
from bot.effects.ledger import purge as purge_effects
from bot.handoff.models import ACTIVE_STATUSES, Ticket, TicketNote
from bot.messages.models import (
    INBOX_PENDING,
    OUTBOX_PENDING,
    Conversation,
    InboxMessage,
    OutboxMessage,
)
from bot.notify.mailbox import outbox_files
from bot.notify.models import QueuedMail
from bot.privacy.erasure import (
    PURGE_DELAY,
    erase_person,
    purge_due,
    remove_mail_files,
    write_rows,
)
from bot.privacy.models import REASON_RETENTION, ErasureRecord
from bot.privacy.tracker import delete_tracker_events, delete_tracker_events_before
from bot.privacy.vault import purge_expired
from bot.registration.desk import CODE_SECRET_PURPOSE
from bot.registry.models import (
    Applicant,
    BatchMembership,
    ChannelIdentity,
    ConsentRecord,
    EmailCode,
    RegistrationStep,
)
from bot.schema import upgrade
from bot.settings import load_settings

log = logging.getLogger(__name__)

BATCH = 500
"""Applicants or conversations handled per transaction."""


def _latest(*moments: datetime | None) -> datetime | None:
    found = [moment for moment in moments if moment is not None]
    return max(found) if found else None


def idle_applicants(
    session: Session, cutoff: datetime, limit: int, after_id: int = 0
) -> tuple[list[int], int | None]:
    """Applicants with no activity since `cutoff` (their row, steps, batch
    memberships and linked conversations all older), among the next `limit`
    candidates with an id above `after_id`; and the last id looked at (None:
    no candidates left)."""
    candidates = session.execute(
        select(Applicant.id, Applicant.updated_at)
        .where(Applicant.updated_at < cutoff, Applicant.id > after_id)
        .order_by(Applicant.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # another gateway sweeps the others
    ).all()
    idle = []
    for row in candidates:
        step = session.execute(
            select(func.max(RegistrationStep.updated_at)).where(
                RegistrationStep.applicant_id == row.id
            )
        ).scalar()
        member = session.execute(
            select(
                func.max(BatchMembership.joined_at),
                func.max(BatchMembership.decided_at),
            ).where(BatchMembership.applicant_id == row.id)
        ).one()
        talked = session.execute(
            select(func.max(Conversation.updated_at))
            .select_from(ChannelIdentity)
            .join(
                Conversation,
                (Conversation.channel == ChannelIdentity.channel)
                & (Conversation.address == ChannelIdentity.external_id),
            )
            .where(ChannelIdentity.applicant_id == row.id)
        ).scalar()
        latest = _latest(row.updated_at, step, member[0], member[1], talked)
        if latest is None or latest < cutoff:
            idle.append(int(row.id))
    return idle, (int(candidates[-1].id) if candidates else None)


def _sweep(
    session: Session, tracker: Engine | None, cutoff: datetime, removed: Counter[str]
) -> None:
    """Old messages, idle conversations, unlinked identities and codes."""
    removed["inbox_message"] += write_rows(
        session,
        delete(InboxMessage).where(
            InboxMessage.received_at < cutoff, InboxMessage.status != INBOX_PENDING
        ),
    ).rowcount
    removed["outbox_message"] += write_rows(
        session,
        delete(OutboxMessage).where(
            OutboxMessage.created_at < cutoff, OutboxMessage.status != OUTBOX_PENDING
        ),
    ).rowcount
    active = select(Ticket.conversation_id).where(Ticket.status.in_(ACTIVE_STATUSES))
    idle = session.execute(
        select(Conversation.id, Conversation.pseudonym)
        .where(
            Conversation.updated_at < cutoff,
            Conversation.id.not_in(active),
            ~select(InboxMessage.id)
            .where(InboxMessage.conversation_id == Conversation.id)
            .exists(),
            ~select(OutboxMessage.id)
            .where(OutboxMessage.conversation_id == Conversation.id)
            .exists(),
        )
        .limit(BATCH)
    ).all()
    ids = [row.id for row in idle]
    if ids:
        tickets = select(Ticket.id).where(Ticket.conversation_id.in_(ids))
        removed["ticket_note"] += write_rows(
            session, delete(TicketNote).where(TicketNote.ticket_id.in_(tickets))
        ).rowcount
        removed["ticket"] += write_rows(
            session, delete(Ticket).where(Ticket.conversation_id.in_(ids))
        ).rowcount
        removed["conversation"] += write_rows(
            session, delete(Conversation).where(Conversation.id.in_(ids))
        ).rowcount
        if tracker is not None:
            removed["tracker_event"] += delete_tracker_events(
                tracker, [row.pseudonym for row in idle]
            )
    talking = select(Conversation.id).where(
        Conversation.channel == ChannelIdentity.channel,
        Conversation.address == ChannelIdentity.external_id,
    )
    unlinked = select(ChannelIdentity.id).where(
        ChannelIdentity.applicant_id.is_(None),
        ChannelIdentity.created_at < cutoff,
        ~talking.exists(),
    )
    removed["email_code"] += write_rows(
        session,
        delete(EmailCode).where(
            (EmailCode.created_at < cutoff) | EmailCode.identity_id.in_(unlinked)
        ),
    ).rowcount
    removed["consent_record"] += write_rows(
        session,
        delete(ConsentRecord).where(
            ConsentRecord.applicant_id.is_(None),
            ConsentRecord.identity_id.in_(unlinked),
        ),
    ).rowcount
    removed["channel_identity"] += write_rows(
        session, delete(ChannelIdentity).where(ChannelIdentity.id.in_(unlinked))
    ).rowcount


def _old_mail_files(directory: Path, cutoff: datetime) -> int:
    """Delete local outbox files written before `cutoff` (naive UTC)."""
    stamp = (cutoff - datetime(1970, 1, 1)).total_seconds()
    count = 0
    for path in outbox_files(directory):
        if path.stat().st_mtime < stamp:
            path.unlink(missing_ok=True)
            count += 1
    return count


def run_retention(
    sessions: Callable[[], Session],
    secret: bytes,
    *,
    days: int,
    tracker: Engine | None,
    outbox_dir: Path | None,
    now: datetime,
) -> dict[str, int]:
    """One retention sweep as of `now`; what it removed, by table."""
    if days < 1:
        raise ValueError("the retention period must be at least one day")
    cutoff = now - timedelta(days=days)
    removed: Counter[str] = Counter()
    erased_ids: list[int] = []
    after: int | None = 0
    while after is not None:
        with sessions() as session, session.begin():
            idle, after = idle_applicants(session, cutoff, BATCH, after)
            for applicant_id in idle:
                erased = erase_person(
                    session,
                    secret,
                    applicant_id=applicant_id,
                    reason=REASON_RETENTION,
                    now=now,
                )
                removed["applicant_erased"] += 1
                erased_ids.append(erased.erasure_id)
                if outbox_dir is not None:
                    removed["mail_file"] += remove_mail_files(outbox_dir, erased.emails)
    with sessions() as session, session.begin():
        # Idle for the whole period: no Rasa turn can be saving their events.
        purge_due(session, tracker, now + PURGE_DELAY, erased_ids)
    swept: Counter[str] = Counter()
    with sessions() as session, session.begin():
        _sweep(session, tracker, cutoff, swept)
        # the gateway's privacy loop deletes expired tokens every 15 s too
        swept["personal_token"] += purge_expired(session, now)
    if tracker is not None:
        swept["tracker_event"] += delete_tracker_events_before(tracker, cutoff)
    if outbox_dir is not None:
        swept["mail_file"] += _old_mail_files(outbox_dir, cutoff)
    swept = +swept
    if swept:
        with sessions() as session, session.begin():
            session.execute(
                insert(ErasureRecord).values(
                    reason=REASON_RETENTION,
                    erased_at=now,
                    purged_at=now,
                    removed=dict(sorted(swept.items())),
                )
            )
    removed.update(swept)
    with sessions() as session, session.begin():
        # Housekeeping, no personal data: not part of the erasure record.
        removed["effect"] += purge_effects(session, now)
        removed["mail_queue"] += write_rows(
            session, delete(QueuedMail).where(QueuedMail.expires_at < now)
        ).rowcount
    result = dict(sorted((+removed).items()))
    log.info("retention (%s days): %s", days, result)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run one retention sweep with the settings; print what it removed."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.privacy.retention",
        description="Remove conversations and personal data older than RETENTION_DAYS.",
    )
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    settings = load_settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    tracker = make_engine(settings.tracker_store_url)
    try:
        removed = run_retention(
            make_sessionmaker(engine),
            settings.secret_for(CODE_SECRET_PURPOSE),
            days=settings.retention_days,
            tracker=tracker,
            outbox_dir=settings.email_outbox_dir,
            now=utcnow(),
        )
    finally:
        engine.dispose()
        tracker.dispose()
    print(f"Retention {settings.retention_days} days: removed {removed or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
