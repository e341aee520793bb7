"""Short Indonesian texts about a registration: status, next action, results.

Every text is GSM-7 and sized for one or two SMS. The commands it tells people
to type (DAFTAR, GABUNG, STATUS, PETUGAS) are understood by the NLU model.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.policy.catalogue import say, says
from bot.policy.programme import format_date, format_number, load_policy
from bot.registration.desk import JoinResult, Standing, Submission
from bot.registration.results import revoked_next, selected_next, when
from bot.registry import BatchInfo
from bot.registry.models import (
    APPLICANT_REVOKED,
    RESULT_NOT_SELECTED,
    RESULT_PENDING,
    RESULT_SELECTED,
    STEP_DONE,
    STEP_EMAIL,
    STEP_FAILED,
    STEP_NIK,
    STEP_PENDING,
)

FINAL_REASONS = frozenset(
    {"student", "civil_servant", "already_participant", "kk_full"}
)
JOIN_OUTCOMES = (
    "joined",
    "already_joined",
    "waiting",
    "full",
    "closed",
    "not_open",
    "no_batch",
    "none_open",
    "selected",
    "revoked",
    "not_ready",
    "not_registered",
    "not_eligible",
)


def __getattr__(name: str) -> object:
    """``SHORT_REASONS`` (failure reason -> clause), ``JOIN_TEXTS`` (outcome
    -> catalogue key) and the texts of ``_TEXTS``, from the text catalogue."""
    if name == "SHORT_REASONS":
        return short_reasons()
    if name == "JOIN_TEXTS":
        return {outcome: f"join.{outcome}" for outcome in JOIN_OUTCOMES}
    if name in _TEXTS:
        return say(_TEXTS[name])
    raise AttributeError(name)


_TEXTS = {
    "REGISTER_AGAIN": "status.next.register_again",
    "GAVE_UP": "status.gave_up",
}


def short_reasons() -> dict[str, str]:
    """A NIK check's failure reason as a short clause, by reason code."""
    return says("status.short_reasons")


def batch_line(batch: BatchInfo) -> str:
    """``Gelombang 12: tutup 30 November 2026 pukul 23.59 WIB, sisa 40 tempat``."""
    return say(
        "status.batch_line",
        number=batch.number,
        closes=when(batch.closes_at),
        places=format_number(batch.places_left),
    )


def _nik_state(standing: Standing) -> str:
    step = standing.steps[STEP_NIK]
    if step.status == STEP_DONE:
        return say("status.nik_verified")
    if step.status == STEP_PENDING:
        return say("status.nik_checking")
    if step.status == STEP_FAILED:
        short = short_reasons().get(step.failure_reason or "")
        if short is None:
            return say("status.nik_failed_unknown")
        return say("status.nik_failed", reason=short)
    return say("status.nik_unchecked")


def _batch_state(standing: Standing) -> tuple[str, str]:
    membership = standing.current_membership
    if membership is None:
        return say("status.batch_none"), "-"
    batch = say("status.batch_name", number=membership.batch_number)
    if standing.now is not None and membership.card_revoked(standing.now):
        return batch, say("status.result_revoked")
    result = {
        RESULT_PENDING: "status.result_pending",
        RESULT_SELECTED: "status.result_selected",
        RESULT_NOT_SELECTED: "status.result_not_selected",
    }[membership.announced_result]
    return batch, say(result)


def first_training_deadline(decided_at: datetime | None) -> str:
    """When the first training must be bought (the active policy's days after
    selection), and what happens otherwise."""
    policy = load_policy()
    days = policy.training.first_purchase_days
    if decided_at is None:
        by = say("status.next.first_training_days", policy)
    else:
        local = decided_at.replace(tzinfo=timezone.utc) + timedelta(hours=7)
        due = format_date((local + timedelta(days=days)).date())
        by = say("status.next.first_training_date", policy, date=due)
    return say("status.next.first_training", policy, by=by)


def next_action(standing: Standing) -> str:
    """The single next thing to do, as one sentence."""
    if standing.applicant.status == APPLICANT_REVOKED:
        return say("status.next.withdrawn")
    nik = standing.steps[STEP_NIK]
    if nik.status == STEP_PENDING:
        return say("status.next.nik_pending")
    if nik.status == STEP_FAILED:
        reason = nik.failure_reason or ""
        if reason == "unavailable":
            return say("status.next.nik_retry")
        if reason in FINAL_REASONS:
            return say("status.next.nik_final")
        return say("status.next.register_again")
    if nik.status != STEP_DONE:
        return say("status.next.continue")
    membership = standing.current_membership
    result = membership.announced_result if membership is not None else None
    if membership is not None and result == RESULT_PENDING:
        return say("status.next.await_result", number=membership.batch_number)
    if membership is not None and result == RESULT_SELECTED:
        deadline = membership.purchase_deadline
        revoked = standing.now is not None and membership.card_revoked(standing.now)
        if deadline is None:  # recorded by hand, not by a publication
            return first_training_deadline(membership.decided_at)
        if revoked:
            return revoked_next(deadline)
        return selected_next(deadline)
    if standing.open_batches:
        batch = standing.open_batches[0]
        return say(
            "status.next.join_open", number=batch.number, closes=when(batch.closes_at)
        )
    if standing.upcoming is not None:
        upcoming = standing.upcoming
        return say(
            "status.next.await_batch",
            number=upcoming.number,
            opens=when(upcoming.opens_at),
        )
    return say("status.next.no_batch")


def status_text(standing: Standing, channel: str | None = None) -> str:
    """Each step with its state and the next action (on SMS the next action
    first, so it is on the first page)."""
    verified = (
        standing.steps[STEP_EMAIL].status == STEP_DONE
        or standing.applicant.email_verified_at is not None
    )
    batch, selection = _batch_state(standing)
    return say(
        "status.card",
        None,
        channel,
        email=say("status.email_verified" if verified else "status.email_unverified"),
        nik=_nik_state(standing),
        batch=batch,
        selection=selection,
        next=next_action(standing),
    )


def failure_reason_text(reason: str | None) -> str:
    """The full reason of a failed NIK check (an "unavailable" failure means
    the retries were used up)."""
    if reason == "unavailable":
        return say("status.gave_up")
    return says("verification.reasons").get(reason or "", "")


def nik_result_text(standing: Standing, channel: str | None = None) -> str:
    """The NIK check's result, told when it completes."""
    step = standing.steps[STEP_NIK]
    if step.status == STEP_DONE:
        membership = standing.current_membership
        if standing.open_batches and membership is None:
            # One SMS with the numbered menu of the batch to join.
            batch = standing.open_batches[0]
            return say(
                "status.nik_done_join",
                number=batch.number,
                closes=when(batch.closes_at),
            )
        return say("status.nik_done", next=next_action(standing))
    if step.status == STEP_FAILED:
        reason = failure_reason_text(step.failure_reason)
        next_ = next_action(standing)
        return say("status.nik_not_done", None, channel, reason=reason, next=next_)
    return say("status.nik_still", next=next_action(standing))


def nik_problem_text(standing: Standing, channel: str | None = None) -> str:
    """What went wrong with the NIK (full reason) and what to do."""
    step = standing.steps[STEP_NIK]
    if step.status == STEP_FAILED:
        reason = failure_reason_text(step.failure_reason)
        next_ = next_action(standing)
        return say("status.nik_problem", None, channel, reason=reason, next=next_)
    state = _nik_state(standing)
    return say("status.nik_state", state=state, next=next_action(standing))


def submission_text(submission: Submission) -> str:
    """What to tell after the form was sent."""
    outcome = submission.outcome
    if outcome == "not_eligible":
        reasons = "".join(f" {reason}" for reason in submission.reasons)
        return say("status.not_eligible", reasons=reasons)
    keys = {
        "queued": "status.submitted",
        "corrected": "status.corrected",
        "nik_taken": "status.nik_taken",
        "kk_full": "status.kk_full",
        "email_unproven": "status.email_unproven",
        "no_consent": "status.no_consent",
    }
    return say(keys.get(outcome, "status.registered"))


def join_text(result: JoinResult) -> str:
    """What to tell after "gabung"."""
    if result.outcome == "choose":
        lines = [batch_line(choice) for choice in result.choices]
        return say("join.choose", lines="\n".join(lines))
    alternative = result.alternative
    if alternative is None:
        instead = ""
        if result.outcome == "none_open":
            instead = " " + say("join.instead_none_open")
    elif result.alternative_open:
        instead = " " + say("join.instead_open", number=alternative.number)
    else:
        instead = " " + say(
            "join.instead_later",
            number=alternative.number,
            opens=when(alternative.opens_at),
        )
    return say(
        f"join.{result.outcome}",
        number=result.batch.number if result.batch else "",
        instead=instead,
        reasons="".join(f" {reason}" for reason in result.reasons),
        deadline=first_training_deadline(None) if result.outcome == "selected" else "",
    )
