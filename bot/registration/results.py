"""Texts about a batch's result: the announcement, reminders, what status says.

One SMS segment or two at most, GSM-7 only, in the member's policy version
(site, training balance, purchase deadline, the "failed n times" statement).
Facts: the 2020 announcement SMS (check the account, note the card number and
keep it secret), the purchase deadline (30 days, 15 from 2023) after which
participation is revoked, joining the next batch without registering again
(`/work/shared/docs/facts.md` 2.10-2.12, FAQ 26-28 and 35).
"""

from __future__ import annotations

from datetime import datetime, timezone

from bot.policy.catalogue import say, says
from bot.policy.programme import Policy, format_datetime


def __getattr__(name: str) -> object:
    """``EXCLUSION_REASONS`` (reason -> clause with ``{cap}``) and
    ``NEXT_BATCH``, from the text catalogue."""
    if name == "EXCLUSION_REASONS":
        return _exclusion_templates()
    if name == "NEXT_BATCH":
        return say("results.next_batch")
    raise AttributeError(name)


def _exclusion_templates() -> dict[str, str]:
    return says("results.exclusion_reasons", cap="{cap}")


def when(moment: datetime) -> str:
    """A stored naive-UTC moment as Indonesian WIB text."""
    return format_datetime(moment.replace(tzinfo=timezone.utc))


def exclusion_reason(reason: str | None, policy: Policy) -> str:
    """Why the re-check left a member out, as a short clause ("" if unknown)."""
    if reason not in _exclusion_templates():
        return ""
    cap = policy.eligibility.kk_cap or 2
    return say(f"results.exclusion_reasons.{reason}", policy, cap=cap)


def statement_hint(policy: Policy) -> str:
    """What to do after failing the selection `failures_for_statement` times."""
    return say("results.statement_hint", policy)


def announcement_text(
    text_key: str,
    policy: Policy,
    batch_number: int,
    deadline: datetime | None = None,
    reason: str | None = None,
) -> str:
    """The result message of one member (`text_key` from the announcement row)."""
    if text_key == "selected":
        if deadline is None:
            raise ValueError("a selected member's message needs the deadline")
        return say(
            "results.selected", policy, number=batch_number, deadline=when(deadline)
        )
    if text_key == "excluded":
        why = exclusion_reason(reason, policy)
        final = reason in ("already_participant", "consent_withdrawn")
        key = "results.excluded_final" if final else "results.excluded"
        return say(key, policy, number=batch_number, why=why)
    if text_key == "not_selected_again":
        return say(
            "results.not_selected_again",
            policy,
            number=batch_number,
            statement=statement_hint(policy),
        )
    if text_key == "not_selected":
        return say("results.not_selected", policy, number=batch_number)
    raise ValueError(f"unknown announcement text {text_key!r}")


def reminder_text(deadline: datetime, days_before: int) -> str:
    """A reminder `days_before` days before the purchase deadline."""
    return say("results.reminder", days=days_before, deadline=when(deadline))


def selected_next(deadline: datetime | None) -> str:
    """Status: what a selected member does next."""
    if deadline is None:
        return say("results.selected_next_open")
    return say("results.selected_next", deadline=when(deadline))


def revoked_next(deadline: datetime) -> str:
    """Status: the card was revoked at the purchase deadline."""
    return say("results.revoked_next", deadline=when(deadline))
