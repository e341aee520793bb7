"""Erasing one person: registry rows, transcripts, e-mail codes, and the audit.

`erase_person` runs inside the caller's transaction and removes, for an
applicant and/or channel identities:
- the applicant row and everything hanging on it (steps, batch memberships,
  verification jobs, consents, e-mail codes), its channel identities (the phone
  number or Telegram id), and one place on its KK count;
- the conversation transcripts of those identities: the person's messages are
  blanked at once and sent replies deleted; agents' notes on their tickets are
  deleted and the tickets marked erased (the console shows "data dihapus");
- it queues the conversations in `privacy_purge`, and `purge_due` (run by the
  gateway a little later) deletes the transcript rows and the Rasa tracker
  events of each pseudonym. Later, because Rasa writes the events of the turn
  that asked for the erasure only after the action returned: deleting them
  during that turn would let Rasa write the whole history again.

What is kept, and why:
- the `conversation` row until the purge: the reply confirming the erasure
  must reach the person. The purge then replaces its address and pseudonym by
  "erased:<id>" (the tickets stay, shown as erased) and empties its state;
- an `erasure_record`: the controller must be able to show that it honoured
  the request (UU PDP, UU 27/2022), which needs the fact of the erasure, not
  the person; it holds the former internal id, the channel kind and counts;
- for a person who was a participant (selected in a batch), a keyed hash of
  the NIK in `lifetime_participant`. Kartu Prakerja is given once per lifetime
  (Permenko 11/2020); without it the same NIK could register here again after
  erasing. Only the HMAC under a server key is kept (no name, KK or contact);
  people who were never participants keep nothing, since nothing stops them
  from registering again.

Mail still queued to the erased addresses (`mail_queue`) goes with them.
`remove_mail_files` deletes the local e-mail outbox files sent to the erased
addresses (after the transaction committed). The effect ledger (`effect`)
stays: it holds no personal data, and a repeated turn must still find that the
erasure was done. Nothing here logs personal data.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.handoff.models import Ticket, TicketNote
from bot.messages.models import (
    INBOX_PENDING,
    OUTBOX_PENDING,
    Conversation,
    InboxMessage,
    OutboxMessage,
)
from bot.notify.mailbox import outbox_files
from bot.notify.models import QueuedMail
from bot.privacy.models import (
    REASON_REQUEST,
    ErasureRecord,
    PersonalToken,
    PrivacyPurge,
)
from bot.privacy.tracker import delete_tracker_events
from bot.registry.models import (
    APPLICANT_PARTICIPANT,
    RESULT_SELECTED,
    Applicant,
    Batch,
    BatchMembership,
    ChannelIdentity,
    ConsentRecord,
    EmailCode,
    KkCount,
    RegistrationStep,
    VerificationJob,
)
from bot.registry.participants import (
    LifetimeParticipant,
    nik_hash,
    was_participant,
)
from bot.selection.models import AnnouncementMessage, DueNotice

log = logging.getLogger(__name__)

PURGE_DELAY = timedelta(seconds=30)
"""How long after an erasure its transcripts and tracker events are purged:
longer than a Rasa turn, so the turn that erased has been saved."""
ERASED = "erased"


def write_rows(session: Session, statement: Any) -> Any:
    """Run an UPDATE or DELETE without syncing the session's objects (the
    statements use subqueries; nothing here holds ORM objects of those rows)."""
    return session.execute(statement, execution_options={"synchronize_session": False})


@dataclass(frozen=True)
class Erased:
    """What an erasure removed; `emails` and `pseudonyms` are for the steps
    after the transaction (mail files, tracker), never for logs."""

    erasure_id: int
    removed: dict[str, int]
    emails: frozenset[str] = field(default=frozenset(), repr=False)
    pseudonyms: tuple[str, ...] = field(default=(), repr=False)


def _count(counter: Counter[str], table: str, rowcount: int) -> None:
    if rowcount:
        counter[table] += rowcount


def erase_person(
    session: Session,
    secret: bytes,
    *,
    applicant_id: int | None = None,
    identity_ids: Iterable[int] = (),
    reason: str = REASON_REQUEST,
    channel: str | None = None,
    now: datetime,
) -> Erased:
    """Erase an applicant and/or identities (see the module); never commits."""
    removed: Counter[str] = Counter()
    ids = set(identity_ids)
    emails: set[str] = set()
    applicant = None
    if applicant_id is not None:
        applicant = session.execute(
            select(Applicant).where(Applicant.id == applicant_id)
        ).scalar_one_or_none()
        ids.update(
            session.execute(
                select(ChannelIdentity.id).where(
                    ChannelIdentity.applicant_id == applicant_id
                )
            ).scalars()
        )
    identities = list(
        session.execute(
            select(ChannelIdentity.channel, ChannelIdentity.external_id).where(
                ChannelIdentity.id.in_(ids)
            )
        ).all()
    )
    conversations = (
        list(
            session.execute(
                select(Conversation.id, Conversation.pseudonym).where(
                    or_(
                        *(
                            and_(
                                Conversation.channel == row.channel,
                                Conversation.address == row.external_id,
                            )
                            for row in identities
                        )
                    )
                )
            ).all()
        )
        if identities
        else []
    )
    code_owner = [EmailCode.identity_id.in_(ids)]
    if applicant_id is not None:
        code_owner.append(EmailCode.applicant_id == applicant_id)
    emails.update(
        str(value)
        for value in session.execute(
            select(EmailCode.email).where(or_(*code_owner))
        ).scalars()
    )
    _count(
        removed,
        "email_code",
        write_rows(session, delete(EmailCode).where(or_(*code_owner))).rowcount,
    )
    consent_owner = [ConsentRecord.identity_id.in_(ids)]
    if applicant_id is not None:
        consent_owner.append(ConsentRecord.applicant_id == applicant_id)
    _count(
        removed,
        "consent_record",
        write_rows(session, delete(ConsentRecord).where(or_(*consent_owner))).rowcount,
    )
    if applicant is not None:
        if applicant.email:
            emails.add(applicant.email)
        _erase_applicant(session, secret, applicant, removed, now)
    _count(
        removed,
        "channel_identity",
        write_rows(
            session, delete(ChannelIdentity).where(ChannelIdentity.id.in_(ids))
        ).rowcount,
    )
    conversation_ids = [row.id for row in conversations]
    _erase_transcripts(session, conversation_ids, removed, now)
    if emails:
        lowered = sorted({email.lower() for email in emails})
        _count(
            removed,
            "mail_queue",
            write_rows(
                session,
                delete(QueuedMail).where(
                    func.lower(QueuedMail.to_address).in_(lowered)
                ),
            ).rowcount,
        )
    result = session.execute(
        insert(ErasureRecord).values(
            reason=reason,
            applicant_id=applicant_id,
            channel=channel,
            erased_at=now,
            removed=dict(sorted(removed.items())),
        )
    )
    erasure_id = int(result.inserted_primary_key[0])
    for row in conversations:
        session.execute(
            insert(PrivacyPurge).values(
                erasure_id=erasure_id,
                pseudonym=row.pseudonym,
                conversation_id=row.id,
                not_before=now + PURGE_DELAY,
            )
        )
    if not conversations:
        write_rows(
            session,
            update(ErasureRecord)
            .where(ErasureRecord.id == erasure_id)
            .values(purged_at=now),
        )
    log.info("erasure %s (%s): %s", erasure_id, reason, dict(removed))
    return Erased(
        erasure_id,
        dict(removed),
        frozenset(email.lower() for email in emails),
        tuple(row.pseudonym for row in conversations),
    )


def _erase_applicant(
    session: Session,
    secret: bytes,
    applicant: Applicant,
    removed: Counter[str],
    now: datetime,
) -> None:
    """The applicant row and its children; the participant hash; the KK place."""
    selected = session.execute(
        select(BatchMembership.id).where(
            BatchMembership.applicant_id == applicant.id,
            BatchMembership.result == RESULT_SELECTED,
        )
    ).first()
    if applicant.status == APPLICANT_PARTICIPANT or selected is not None:
        digest = nik_hash(secret, applicant.nik)
        if not was_participant(session, secret, applicant.nik):
            session.execute(
                insert(LifetimeParticipant).values(nik_hash=digest, recorded_at=now)
            )
            removed["lifetime_participant_kept"] += 1
    for batch_id in session.execute(
        select(BatchMembership.batch_id).where(
            BatchMembership.applicant_id == applicant.id
        )
    ).scalars():
        write_rows(
            session,
            update(Batch)
            .where(Batch.id == batch_id, Batch.joined_count > 0)
            .values(joined_count=Batch.joined_count - 1),
        )
    for model, table in (
        (DueNotice, "due_notice"),
        (AnnouncementMessage, "announcement_message"),
        (BatchMembership, "batch_membership"),
        (RegistrationStep, "registration_step"),
        (VerificationJob, "verification_job"),
    ):
        _count(
            removed,
            table,
            write_rows(
                session, delete(model).where(model.applicant_id == applicant.id)
            ).rowcount,
        )
    kk = applicant.kk_number
    write_rows(
        session,
        update(Ticket)
        .where(Ticket.applicant_id == applicant.id)
        .values(applicant_id=None, erased_at=now),
    )
    write_rows(
        session,
        update(ChannelIdentity)
        .where(ChannelIdentity.applicant_id == applicant.id)
        .values(applicant_id=None, linked_at=None, link_method=None),
    )
    _count(
        removed,
        "applicant",
        write_rows(
            session, delete(Applicant).where(Applicant.id == applicant.id)
        ).rowcount,
    )
    write_rows(
        session,
        update(KkCount)
        .where(KkCount.kk_number == kk, KkCount.registered_count > 0)
        .values(registered_count=KkCount.registered_count - 1, updated_at=now),
    )
    _count(
        removed,
        "kk_count",
        write_rows(
            session,
            delete(KkCount).where(
                KkCount.kk_number == kk, KkCount.registered_count == 0
            ),
        ).rowcount,
    )


def _erase_transcripts(
    session: Session,
    conversation_ids: list[int],
    removed: Counter[str],
    now: datetime,
) -> None:
    """Blank the person's messages, delete sent replies and agents' notes, mark
    the tickets erased. Messages still waiting are left to `purge_due`."""
    if not conversation_ids:
        return
    tickets = select(Ticket.id).where(Ticket.conversation_id.in_(conversation_ids))
    _count(
        removed,
        "ticket_note",
        write_rows(
            session, delete(TicketNote).where(TicketNote.ticket_id.in_(tickets))
        ).rowcount,
    )
    write_rows(
        session,
        update(Ticket)
        .where(Ticket.conversation_id.in_(conversation_ids))
        .values(applicant_id=None, erased_at=now),
    )
    _count(
        removed,
        "personal_token",
        write_rows(
            session,
            delete(PersonalToken).where(
                PersonalToken.conversation_id.in_(conversation_ids)
            ),
        ).rowcount,
    )
    _count(
        removed,
        "inbox_message",
        write_rows(
            session,
            update(InboxMessage)
            .where(
                InboxMessage.conversation_id.in_(conversation_ids),
                InboxMessage.status != INBOX_PENDING,
            )
            .values(text="", payload=None, event=None, user_name=None, last_error=None),
        ).rowcount,
    )
    _count(
        removed,
        "outbox_message",
        write_rows(
            session,
            delete(OutboxMessage).where(
                OutboxMessage.conversation_id.in_(conversation_ids),
                OutboxMessage.status != OUTBOX_PENDING,
            ),
        ).rowcount,
    )


def _still_busy(session: Session, conversation_id: int) -> bool:
    """Whether the conversation has messages to process or replies to send."""
    inbox = session.execute(
        select(InboxMessage.id).where(
            InboxMessage.conversation_id == conversation_id,
            InboxMessage.status == INBOX_PENDING,
        )
    ).first()
    outbox = session.execute(
        select(OutboxMessage.id).where(
            OutboxMessage.conversation_id == conversation_id,
            OutboxMessage.status == OUTBOX_PENDING,
        )
    ).first()
    return inbox is not None or outbox is not None


def _purge_conversation(session: Session, conversation_id: int) -> None:
    """Delete the transcript and anonymise the conversation row: address and
    pseudonym become "erased:<id>", so the tickets stay (shown as erased) and a
    new message from the person starts a new conversation. The channel identity
    that the erasing turn itself looked up again (every turn finds its caller)
    goes too, unless it was linked to a registration since."""
    row = session.execute(
        select(Conversation.channel, Conversation.address).where(
            Conversation.id == conversation_id
        )
    ).first()
    if row is not None:
        again = select(ChannelIdentity.id).where(
            ChannelIdentity.channel == row.channel,
            ChannelIdentity.external_id == row.address,
            ChannelIdentity.applicant_id.is_(None),
        )
        write_rows(session, delete(EmailCode).where(EmailCode.identity_id.in_(again)))
        write_rows(
            session, delete(ConsentRecord).where(ConsentRecord.identity_id.in_(again))
        )
        write_rows(
            session, delete(ChannelIdentity).where(ChannelIdentity.id.in_(again))
        )
    write_rows(
        session,
        delete(PersonalToken).where(PersonalToken.conversation_id == conversation_id),
    )
    write_rows(
        session,
        delete(InboxMessage).where(InboxMessage.conversation_id == conversation_id),
    )
    write_rows(
        session,
        delete(OutboxMessage).where(OutboxMessage.conversation_id == conversation_id),
    )
    write_rows(
        session,
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(
            address=f"{ERASED}:{conversation_id}",
            pseudonym=f"{ERASED}:{conversation_id}",
            state={},
            lease_owner=None,
            lease_until=None,
        ),
    )


def purge_due(
    session: Session,
    tracker: Engine | None,
    now: datetime,
    erasures: Collection[int] | None = None,
) -> int:
    """Purge the conversations queued by erasures whose delay has passed: the
    transcript rows, the address (`_purge_conversation`) and the Rasa tracker
    events. A conversation still processing a message or sending a reply waits
    another `PURGE_DELAY`. Erasure records are marked purged when all their
    conversations are; `erasures` limits it to those erasures. Returns how many
    were purged."""
    query = (
        select(PrivacyPurge)
        .where(PrivacyPurge.not_before <= now)
        .with_for_update(skip_locked=True)  # another gateway takes the others
    )
    if erasures is not None:
        query = query.where(PrivacyPurge.erasure_id.in_(list(erasures)))
    due = list(session.execute(query).scalars())
    purged = []
    for item in due:
        if item.conversation_id is not None:
            if _still_busy(session, item.conversation_id):
                item.not_before = now + PURGE_DELAY
                continue
            _purge_conversation(session, item.conversation_id)
        if tracker is not None:
            delete_tracker_events(tracker, [item.pseudonym])
        write_rows(session, delete(PrivacyPurge).where(PrivacyPurge.id == item.id))
        purged.append(item)
    done = {item.erasure_id for item in purged if item.erasure_id is not None}
    for erasure_id in done:
        left = session.execute(
            select(PrivacyPurge.id).where(PrivacyPurge.erasure_id == erasure_id)
        ).first()
        if left is None:
            write_rows(
                session,
                update(ErasureRecord)
                .where(ErasureRecord.id == erasure_id)
                .values(purged_at=now),
            )
    return len(purged)


def remove_mail_files(directory: Path, emails: Iterable[str]) -> int:
    """Delete the local outbox's messages to any of `emails`; how many."""
    wanted = {email.lower() for email in emails}
    if not wanted:
        return 0
    parser = BytesParser(policy=policy.default)
    count = 0
    for path in outbox_files(directory):
        try:
            with path.open("rb") as file:
                headers = parser.parse(file, headersonly=True)
        except OSError:
            continue
        to = {address.lower() for _, address in getaddresses(headers.get_all("To", []))}
        if to & wanted:
            path.unlink(missing_ok=True)
            count += 1
    return count
