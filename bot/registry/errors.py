"""Typed errors of the registry: what a caller can tell the applicant about.

A function that raises one of these has undone its own writes first, so the
caller's transaction stays usable (commit or roll back as it wishes). Messages
never carry personal data (no NIK, KK number, phone or email). The names read as
the refusal itself (`BatchFull`), hence no `Error` suffix.
"""

# ruff: noqa: N818

from __future__ import annotations


class RegistryError(Exception):
    """Base class of the registry's expected refusals."""


class AlreadyRegistered(RegistryError):
    """The NIK already has an applicant (the programme is once in a lifetime)."""

    def __init__(self, applicant_id: int) -> None:
        super().__init__(f"NIK already registered (applicant {applicant_id})")
        self.applicant_id = applicant_id


class KkCapReached(RegistryError):
    """The family card (KK) already has as many applicants as the policy allows."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"family card already has {cap} applicants")
        self.cap = cap


class ApplicantNotFound(RegistryError):
    """No applicant with that id."""


class NotEligible(RegistryError):
    """The applicant may not join a batch (already a participant, or revoked)."""

    def __init__(self, status: str) -> None:
        super().__init__(f"applicant is {status}")
        self.status = status


class BatchNotFound(RegistryError):
    """No batch with that id or number."""


class BatchClosed(RegistryError):
    """The batch is not open now (not yet open, or already closed)."""

    def __init__(self, batch_number: int, not_yet_open: bool) -> None:
        state = "not open yet" if not_yet_open else "closed"
        super().__init__(f"batch {batch_number} is {state}")
        self.batch_number = batch_number
        self.not_yet_open = not_yet_open


class BatchFull(RegistryError):
    """The batch has reached its quota."""

    def __init__(self, batch_number: int) -> None:
        super().__init__(f"batch {batch_number} is full")
        self.batch_number = batch_number


class AlreadyInBatch(RegistryError):
    """The applicant already waits for selection in another batch."""

    def __init__(self, batch_number: int) -> None:
        super().__init__(f"applicant already waits in batch {batch_number}")
        self.batch_number = batch_number


class IdentityNotFound(RegistryError):
    """No channel identity with that id."""


class IdentityLinked(RegistryError):
    """The channel identity already belongs to another applicant."""


class ApplicantHasIdentity(RegistryError):
    """The applicant is already linked to another identity on that channel."""
