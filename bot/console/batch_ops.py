"""A batch's lifecycle as audited operations, for the console and the CLI.

Each function does one step (`bot.selection`) and writes its audit event in
the same transaction, so a step and its record are stored together or not at
all; a refused step (`LifecycleError`) writes neither. The actor is an agent id
(console) or None with `via` (`cli:<os user>`). The selection takes two
transactions (`bot.selection.selection`): the caller commits between
`start_selection` and `finish_selection`; the audit event is written with the
results.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.console import audit
from bot.registry.participants import erased_participants
from bot.selection import delivery, lifecycle, selection
from bot.selection.lifecycle import RunInfo


def _target(run: RunInfo, via: str | None, extra: str = "") -> str:
    text = f"batch:{run.batch.number}{extra}" + (f" by:{via}" if via else "")
    return text[: audit.TARGET_MAX]


def schedule(
    db: Session,
    actor: int | None,
    via: str | None,
    number: int,
    opens_at: datetime,
    closes_at: datetime,
    quota: int,
    places: int | None,
    now: datetime,
) -> tuple[RunInfo, bool]:
    """Open or schedule a batch (the same request again changes nothing)."""
    run, created = lifecycle.schedule_batch(
        db, number, opens_at, closes_at, quota, places, now
    )
    if created:
        extra = f" quota:{quota} places:{run.places}"
        audit.record(db, audit.BATCH_SCHEDULED, actor, target=_target(run, via, extra))
    return run, created


def close(
    db: Session, actor: int | None, via: str | None, batch_id: int, now: datetime
) -> RunInfo:
    """Close a batch."""
    run = lifecycle.close_batch(db, batch_id, now)
    audit.record(db, audit.BATCH_CLOSED, actor, target=_target(run, via))
    return run


def start_selection(
    db: Session,
    batch_id: int,
    now: datetime,
    seed: str | None = None,
    places: int | None = None,
) -> RunInfo:
    """The selection's first step (commit it before `finish_selection`)."""
    return selection.start_selection(db, batch_id, now, seed, places)


def finish_selection(
    db: Session,
    actor: int | None,
    via: str | None,
    batch_id: int,
    now: datetime,
    secret: bytes | None,
) -> RunInfo:
    """Draw and record (`secret`: the key of the erased participants' NIK
    hashes); audited once, when the results are recorded."""
    before = lifecycle.run_of(db, batch_id).state

    def erased(session: Session, niks: list[str]) -> set[str]:
        return erased_participants(session, secret, niks) if secret else set()

    run = selection.finish_selection(db, batch_id, now, erased)
    if before != run.state:
        extra = f" seed:{run.seed} selected:{run.selected_count}"
        audit.record(db, audit.BATCH_SELECTED, actor, target=_target(run, via, extra))
    return run


def publish(
    db: Session, actor: int | None, via: str | None, batch_id: int, now: datetime
) -> RunInfo:
    """Publish the results."""
    run = lifecycle.publish_results(db, batch_id, now)
    audit.record(db, audit.BATCH_PUBLISHED, actor, target=_target(run, via))
    return run


def set_paused(
    db: Session,
    actor: int | None,
    via: str | None,
    batch_id: int,
    paused: bool,
    now: datetime,
) -> RunInfo:
    """Pause or resume sending the batch's results (and its reminders)."""
    delivery.set_paused(db, batch_id, paused, now)
    run = lifecycle.run_of(db, batch_id)
    event = audit.BATCH_PAUSED if paused else audit.BATCH_RESUMED
    audit.record(db, event, actor, target=_target(run, via))
    return run
