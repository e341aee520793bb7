"""The NIK check contract: request, result and the verifier protocol.

Outcomes follow the reasons a 2020 NIK check could fail (see docs/domain.md).
Reasons are Indonesian, GSM-7 safe and carry no personal data, so they can be
sent to the user and stored as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol, get_args

from bot.policy.catalogue import say, says

Outcome = Literal[
    "verified",
    "unknown_nik",
    "data_mismatch",
    "student",
    "civil_servant",
    "already_participant",
    "kk_full",
    "unavailable",
]
OUTCOMES: tuple[str, ...] = get_args(Outcome)



def __getattr__(name: str) -> object:
    """``REASONS`` (outcome -> reason) and ``REASON_BROKEN`` (a fault on our
    side: retrying will not help), from the text catalogue."""
    if name == "REASONS":
        return says("verification.reasons")
    if name == "REASON_BROKEN":
        return say("verification.broken")
    raise AttributeError(name)


@dataclass(frozen=True)
class NikRequest:
    """What the applicant typed: NIK, KK number, full name and birth date."""

    nik: str
    kk_number: str
    full_name: str
    birth_date: date


@dataclass(frozen=True)
class NikCheckResult:
    """The verdict of a NIK check, with a reason to show the user."""

    outcome: str
    reason: str
    retryable: bool = False

    def __post_init__(self) -> None:
        """Refuse outcomes outside :data:`OUTCOMES`."""
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown NIK check outcome {self.outcome!r}")

    @property
    def verified(self) -> bool:
        """True when the NIK passed every check."""
        return self.outcome == "verified"


def result_for(outcome: str, *, retryable: bool | None = None) -> NikCheckResult:
    """The standard result for an outcome; only "unavailable" is retryable."""
    if retryable is None:
        retryable = outcome == "unavailable"
    broken = not retryable and outcome == "unavailable"
    key = "verification.broken" if broken else f"verification.reasons.{outcome}"
    return NikCheckResult(outcome, say(key), retryable)


class NikVerifier(Protocol):
    """Checks a NIK against a population registry (Dukcapil or a local stand-in)."""

    async def verify(self, request: NikRequest) -> NikCheckResult:
        """Check one applicant's NIK, KK, name and birth date."""
        ...
