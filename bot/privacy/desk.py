"""What a conversation can do about its own data, one transaction each.

As for status (`bot.registration.desk`), the caller is the conversation's own
channel identity, and only an identity linked to the registration (the SMS
number that registered, or a Telegram account linked with an e-mail code) is
told what is held or may erase it; values are told masked, never in clear.
Erasure needs a code sent to the registered e-mail on top of the confirmation
in the chat. Withdrawing consent stops the processing: the consents are marked
withdrawn, queued checks are cancelled and the registration is revoked, so it
cannot go on (erasure is offered).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.effects import once, replay
from bot.policy.validation import mask_email, mask_nik, mask_phone
from bot.privacy.erasure import erase_person, remove_mail_files
from bot.registration.desk import (
    CODE_LIMITS,
    CONSENT_PURPOSE,
    Caller,
    CodeRequest,
    issue_code,
)
from bot.registry import (
    CodeCheck,
    codes_sent_since,
    get_applicant,
    identities_of,
    verify_email_code,
    withdraw_consent,
)
from bot.registry.models import (
    APPLICANT_REVOKED,
    JOB_FAILED,
    JOB_QUEUED,
    Applicant,
    VerificationJob,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldData:
    """What is held about a registered person, every value masked."""

    fields: tuple[tuple[str, str], ...] = field(repr=False)
    """(field, masked value) in the order they are told; the field's word is
    ``privacy.held_labels.<field>`` in the text catalogue."""
    channels: tuple[str, ...]
    retention_days: int


@dataclass(frozen=True)
class ErasureResult:
    """`outcome`: `erased`, `not_registered`, or a code check's refusal
    (`wrong`, `expired`, `too_many_attempts`, `used`, `no_code`)."""

    outcome: str
    attempts_left: int = 0


def mask_birth_date(value: date) -> str:
    """``1990-08-15`` -> ``**-**-1990``: the year only."""
    return f"**-**-{value.year}"


def mask_name(name: str) -> str:
    """``BUDI SANTOSO`` -> ``B*** S***``: initials only."""
    return " ".join(f"{word[0]}***" for word in name.split() if word)


class PrivacyDesk:
    """Data-subject requests over a session factory."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        secret: bytes,
        retention_days: int,
        outbox_dir: Path | None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`secret` keys e-mail codes and NIK hashes (as the registration
        desk's); `outbox_dir`: the local mail folder (None over SMTP)."""
        self._sessions = sessions
        self._secret = secret
        self._days = retention_days
        self._outbox_dir = outbox_dir
        self._clock = clock

    @property
    def retention_days(self) -> int:
        """Days data is kept after the last activity."""
        return self._days

    def held(self, caller: Caller) -> HeldData | None:
        """What is held about the caller's registration (None: not linked)."""
        if caller.applicant_id is None:
            return None
        with self._sessions() as session:
            applicant = get_applicant(session, caller.applicant_id)
            identities = identities_of(session, caller.applicant_id)
        fields = [
            ("name", mask_name(applicant.full_name)),
            ("nik", mask_nik(applicant.nik)),
            ("kk", mask_nik(applicant.kk_number)),
            ("birth", mask_birth_date(applicant.birth_date)),
        ]
        if applicant.email:
            fields.append(("email", mask_email(applicant.email)))
        if applicant.phone:
            fields.append(("phone", mask_phone(applicant.phone)))
        channels = tuple(sorted({identity.channel for identity in identities}))
        return HeldData(tuple(fields), channels, self._days)

    def request_erasure_code(
        self, caller: Caller, key: str | None = None
    ) -> CodeRequest:
        """A code for the registered e-mail to confirm erasure, its mail queued;
        an empty request when not linked, no e-mail is recorded, or too many
        codes were sent. Once per turn `key`."""
        if caller.applicant_id is None:
            return CodeRequest()
        applicant_id = caller.applicant_id
        now = self._clock()

        def work(session: Session) -> CodeRequest:
            applicant = get_applicant(session, applicant_id)
            if applicant.email is None:
                return CodeRequest()
            for window, limit in CODE_LIMITS:
                sent = codes_sent_since(
                    session, now - window, applicant_id=applicant_id
                )
                if sent >= limit:
                    return CodeRequest(
                        wait_minutes=max(int(window.total_seconds() // 60), 1)
                    )
            return issue_code(
                session,
                self._secret,
                applicant.email,
                "erase",
                now,
                identity_id=caller.identity_id,
                applicant_id=applicant_id,
            )

        return once(
            self._sessions,
            key,
            "erasure_code",
            work,
            CodeRequest,
            stored=CodeRequest.recorded,
            clock=self._clock,
        )

    def confirm_erasure(
        self, caller: Caller, code: str, key: str | None = None
    ) -> ErasureResult:
        """Check the typed code; when right, erase the caller's registration,
        transcripts and mail (see `bot.privacy.erasure`), in the same
        transaction. A repeated turn `key` gets the first one's outcome (the
        caller is no longer registered then)."""
        done = self.erasure_replayed(key)
        if done is not None:
            return done
        if caller.applicant_id is None:
            return ErasureResult("not_registered")
        applicant_id = caller.applicant_id
        now = self._clock()
        emails: list[frozenset[str]] = []

        def work(session: Session) -> ErasureResult:
            check: CodeCheck = verify_email_code(
                session,
                self._secret,
                code,
                identity_id=caller.identity_id,
                applicant_id=applicant_id,
                now=now,
            )
            if not check.ok:
                return ErasureResult(check.outcome, check.attempts_left)
            erased = erase_person(
                session,
                self._secret,
                applicant_id=applicant_id,
                identity_ids=[caller.identity_id],
                channel=caller.channel,
                now=now,
            )
            emails.append(erased.emails)
            return ErasureResult("erased")

        result = once(
            self._sessions, key, "erasure", work, ErasureResult, clock=self._clock
        )
        if self._outbox_dir is not None and emails:
            remove_mail_files(self._outbox_dir, emails[0])
        return result

    def erasure_replayed(self, key: str | None) -> ErasureResult | None:
        """What the erasure code check of turn `key` gave, when it ran already."""
        found, outcome = replay(self._sessions, key, "erasure", ErasureResult)
        return outcome if found else None

    def erase_unregistered(self, caller: Caller, key: str | None = None) -> None:
        """Erase what an unregistered caller left (identity, consent, codes,
        transcript); confirmed in the chat only, as no e-mail is registered.
        Once per turn `key`."""
        emails: list[frozenset[str]] = []

        def work(session: Session) -> bool:
            erased = erase_person(
                session,
                self._secret,
                identity_ids=[caller.identity_id],
                channel=caller.channel,
                now=self._clock(),
            )
            emails.append(erased.emails)
            return True

        once(self._sessions, key, "erasure_chat", work, bool, clock=self._clock)
        if self._outbox_dir is not None and emails:
            remove_mail_files(self._outbox_dir, emails[0])

    def withdraw(self, caller: Caller, key: str | None = None) -> bool:
        """Withdraw the caller's consent; a registration is revoked and its
        queued checks cancelled. False when there was no consent to withdraw.
        Once per turn `key`."""
        return once(
            self._sessions,
            key,
            "withdraw",
            lambda session: self._withdraw(session, caller),
            bool,
            clock=self._clock,
        )

    def _withdraw(self, session: Session, caller: Caller) -> bool:
        now = self._clock()
        count = withdraw_consent(
            session,
            CONSENT_PURPOSE,
            identity_id=caller.identity_id,
            applicant_id=caller.applicant_id,
            now=now,
        )
        if caller.applicant_id is not None:
            session.execute(
                update(Applicant)
                .where(Applicant.id == caller.applicant_id)
                .values(status=APPLICANT_REVOKED, updated_at=now)
            )
            session.execute(
                update(VerificationJob)
                .where(
                    VerificationJob.applicant_id == caller.applicant_id,
                    VerificationJob.status == JOB_QUEUED,
                )
                .values(
                    status=JOB_FAILED,
                    result_code="consent_withdrawn",
                    finished_at=now,
                )
            )
        log.info(
            "consent withdrawn (%s)", "applicant" if caller.applicant_id else "chat"
        )
        return count > 0 or caller.applicant_id is not None
