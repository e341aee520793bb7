"""A batch's lifecycle on SQLite and PostgreSQL: each step once, in order, the
policy re-checked at selection, a crash in the middle resumed with the same draw,
and what publishing writes (deadlines, participants, messages, reminders)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

import bot.selection.selection as selection_module
from bot.registry import get_applicant, join_batch, memberships_of, record_selection
from bot.registry.models import (
    APPLICANT_PARTICIPANT,
    APPLICANT_REGISTERED,
    RESULT_NOT_SELECTED,
    RESULT_PENDING,
    RESULT_SELECTED,
    BatchMembership,
)
from bot.registry.participants import (
    LifetimeParticipant,
    erased_participants,
    nik_hash,
)
from bot.selection.announcements import (
    TEXT_EXCLUDED,
    TEXT_NOT_SELECTED_AGAIN,
    TEXT_SELECTED,
    create_announcements,
    messages_of,
    pending_messages,
)
from bot.selection.draw import Candidate, draw
from bot.selection.errors import LifecycleError
from bot.selection.lifecycle import (
    close_batch,
    publish_results,
    run_of,
    schedule_batch,
)
from bot.selection.notices import (
    create_reminders,
    due_notices,
    notices_of,
    reminder_key,
)
from bot.selection.selection import select_batch, start_selection
from tests.registry.conftest import concurrently
from tests.selection.conftest import CLOSES, DURING, OPENS, member, open_batch

AFTER = CLOSES + timedelta(hours=1)
OTHER_KK = "3174010101200002"
SECRET = b"selection-test-secret-0123456789"


def _refused(code: str, work: object) -> None:
    with pytest.raises(LifecycleError) as caught:
        work()  # type: ignore[operator]
    assert caught.value.code == code


def _results(session: Session, batch_id: int) -> dict[int, str]:
    rows = session.execute(
        select(BatchMembership.applicant_id, BatchMembership.result).where(
            BatchMembership.batch_id == batch_id
        )
    ).all()
    return {applicant_id: result for applicant_id, result in rows}


def _closed(session: Session, batch_id: int) -> None:
    close_batch(session, batch_id, AFTER)
    session.commit()


def test_schedule_is_idempotent_and_refuses_what_does_not_fit(
    session: Session,
) -> None:
    run, created = schedule_batch(session, 7, OPENS, CLOSES, 100, 40, now=DURING)
    assert created and run.places == 40 and run.state == "open"
    again, created = schedule_batch(session, 7, OPENS, CLOSES, 100, 40, now=DURING)
    assert not created and again.batch.id == run.batch.id
    _refused("exists", lambda: schedule_batch(session, 7, OPENS, CLOSES, 90))
    _refused(
        "places_over_quota",
        lambda: schedule_batch(session, 8, OPENS, CLOSES, 10, 11, now=DURING),
    )
    _refused(
        "bad_window", lambda: schedule_batch(session, 8, CLOSES, OPENS, 10, now=DURING)
    )
    assert run.stage(DURING) == "open" and run.stage(OPENS - timedelta(1)) == (
        "scheduled"
    )


def test_each_step_once_and_in_order(session: Session) -> None:
    batch_id = open_batch(session)
    member(session, 1, batch_id)
    _refused("not_closed", lambda: start_selection(session, batch_id, AFTER))
    _refused("not_selected", lambda: publish_results(session, batch_id, AFTER))
    _refused("not_open_yet", lambda: close_batch(session, batch_id, OPENS))
    close_batch(session, batch_id, DURING)
    session.commit()
    _refused("already_closed", lambda: close_batch(session, batch_id, AFTER))
    # closing early ends the window: nobody joins any more
    assert run_of(session, batch_id).batch.closes_at == DURING
    _refused(
        "over_places", lambda: start_selection(session, batch_id, AFTER, places=101)
    )


def test_selection_rechecks_the_policy_and_fills_the_places(
    sessions: sessionmaker, session: Session
) -> None:
    batch_id = open_batch(session, quota=100)
    verified = [
        member(session, i, batch_id, kk=f"31740101012{i:05d}") for i in range(10)
    ]
    unverified = member(session, 50, batch_id, verified=False, kk=OTHER_KK)
    capped_family = [
        member(session, 60 + i, batch_id, kk="3174010101209999", policy_version="2021")
        for i in range(3)
    ]
    _closed(session, batch_id)
    run = select_batch(sessions.begin, batch_id, AFTER, seed="fixed", places=100)
    assert run.state == "selected" and run.seed == "fixed"
    results = _results(session, batch_id)
    assert results[unverified.id] == RESULT_NOT_SELECTED
    assert all(results[a.id] == RESULT_SELECTED for a in verified)
    family = [results[a.id] for a in capped_family]
    assert family.count(RESULT_SELECTED) == 2  # max 2 NIK per KK from 2021
    assert run.selected_count == 12 and run.eligible_count == 13
    reasons = {
        m.applicant_id: m.excluded_reason
        for a in [unverified, *capped_family]
        for m in memberships_of(session, a.id)
    }
    assert reasons[unverified.id] == "nik_unverified"
    assert sorted(filter(None, reasons.values())) == ["kk_full", "nik_unverified"]
    _refused("already_selected", lambda: start_selection(session, batch_id, AFTER))
    again = select_batch  # a second run changes nothing
    with pytest.raises(LifecycleError):
        again(sessions.begin, batch_id, AFTER)
    assert _results(session, batch_id) == results


def test_a_crash_in_the_middle_is_resumed_with_the_same_draw(
    sessions: sessionmaker, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = open_batch(session)
    people = [member(session, i, batch_id, kk=f"31740101012{i:05d}") for i in range(40)]
    _closed(session, batch_id)
    real = selection_module.record_decisions

    def crash(db: Session, decisions: list, now: datetime) -> int:
        real(db, decisions[: len(decisions) // 2], now)
        db.flush()
        raise RuntimeError("killed midway")

    monkeypatch.setattr(selection_module, "record_decisions", crash)
    with pytest.raises(RuntimeError):
        select_batch(sessions.begin, batch_id, AFTER, places=15)
    stuck = run_of(session, batch_id)
    assert stuck.state == "selecting" and stuck.seed
    assert set(_results(session, batch_id).values()) == {RESULT_PENDING}
    monkeypatch.setattr(selection_module, "record_decisions", real)
    run = select_batch(sessions.begin, batch_id, AFTER)
    assert run.seed == stuck.seed and run.selected_count == 15
    by_membership = {
        m.id: m.applicant_id for a in people for m in memberships_of(session, a.id)
    }
    expected = draw(
        [Candidate(m_id, "x" + str(m_id), None) for m_id in by_membership],
        stuck.seed,
        15,
    )
    wanted = {by_membership[d.membership_id]: d.result for d in expected}
    assert _results(session, batch_id) == wanted


def test_publishing_writes_deadlines_messages_and_reminders(
    sessions: sessionmaker, session: Session
) -> None:
    batch_id = open_batch(session)
    old = member(session, 1, batch_id, kk="3174010101200011")
    new = member(session, 2, batch_id, kk="3174010101200012", policy_version="2023")
    tg = member(session, 3, batch_id, kk="3174010101200013", channel="telegram")
    left_out = member(session, 4, batch_id, verified=False, kk="3174010101200014")
    _closed(session, batch_id)
    select_batch(sessions.begin, batch_id, AFTER, places=3)
    session.commit()
    published_at = AFTER + timedelta(days=3)
    run = publish_results(session, batch_id, published_at)
    session.commit()
    assert run.state == "published"
    _refused("already_published", lambda: publish_results(session, batch_id, AFTER))
    deadlines = {
        a.id: memberships_of(session, a.id)[0].purchase_deadline for a in (old, new)
    }
    assert deadlines[old.id] == published_at + timedelta(days=30)
    assert deadlines[new.id] == published_at + timedelta(days=15)
    assert get_applicant(session, old.id).status == APPLICANT_PARTICIPANT
    assert get_applicant(session, left_out.id).status == APPLICANT_REGISTERED
    texts = {
        a.id: [m.text_key for m in messages_of(session, a.id)]
        for a in (old, tg, left_out)
    }
    assert texts == {
        old.id: [TEXT_SELECTED],
        tg.id: [TEXT_SELECTED],
        left_out.id: [TEXT_EXCLUDED],
    }
    assert [m.channel for m in messages_of(session, tg.id)] == ["telegram"]
    assert len(pending_messages(session, batch_id, limit=2)) == 2
    assert len(pending_messages(session, batch_id)) == 4
    assert create_announcements(session, batch_id, AFTER) == 0  # idempotent
    reminders = notices_of(session, old.id)
    assert [n.days_before for n in reminders] == [7, 2]
    assert reminders[0].key == reminder_key(reminders[0].membership_id, 7)
    assert reminders[0].due_at == deadlines[old.id] - timedelta(days=7)
    assert create_reminders(session, batch_id, published_at) == 0
    assert due_notices(session, published_at) == []
    due = due_notices(session, deadlines[new.id] - timedelta(days=2))
    assert {(n.applicant_id, n.days_before) for n in due} >= {(new.id, 7), (new.id, 2)}
    assert left_out.id not in {n.applicant_id for n in due}


def test_not_selected_join_the_next_batch(
    sessions: sessionmaker, session: Session
) -> None:
    first = open_batch(session, 1)
    second = open_batch(session, 2)
    people = [member(session, i, first, kk=f"31740101012{i:05d}") for i in range(4)]
    _closed(session, first)
    select_batch(sessions.begin, first, AFTER, places=1)
    publish_results(session, first, AFTER)
    session.commit()
    results = _results(session, first)
    loser = next(a for a in people if results[a.id] == RESULT_NOT_SELECTED)
    later = OPENS + timedelta(days=15)
    joined = join_batch(session, loser.id, second, now=later)
    assert joined.result == RESULT_PENDING


def test_an_erased_participant_is_not_selected_again(
    sessions: sessionmaker, session: Session
) -> None:
    batch_id = open_batch(session)
    again = member(session, 1, batch_id)
    fresh = member(session, 2, batch_id, kk=OTHER_KK)
    session.execute(
        insert(LifetimeParticipant).values(
            nik_hash=nik_hash(SECRET, again.nik), recorded_at=DURING
        )
    )
    session.commit()
    _closed(session, batch_id)
    select_batch(
        sessions.begin,
        batch_id,
        AFTER,
        erased=lambda db, niks: erased_participants(db, SECRET, niks),
    )
    [decided] = memberships_of(session, again.id)
    assert decided.result == RESULT_NOT_SELECTED
    assert decided.excluded_reason == "already_participant"
    assert memberships_of(session, fresh.id)[0].result == RESULT_SELECTED


def test_two_selections_at_once_draw_once(
    sessions: sessionmaker, session: Session
) -> None:
    batch_id = open_batch(session)
    for i in range(20):
        member(session, i, batch_id, kk=f"31740101012{i:05d}")
    _closed(session, batch_id)
    outcomes = concurrently(
        4, lambda _: select_batch(sessions.begin, batch_id, AFTER, places=5)
    )
    for outcome in outcomes:
        assert not isinstance(outcome, Exception) or (
            isinstance(outcome, LifecycleError) and outcome.code == "already_selected"
        ), outcome
    seeds = {o.seed for o in outcomes if not isinstance(o, Exception)}
    assert len(seeds) == 1
    assert list(_results(session, batch_id).values()).count(RESULT_SELECTED) == 5
    assert run_of(session, batch_id).selected_count == 5


def test_the_third_failure_gets_the_statement_text(
    sessions: sessionmaker, session: Session
) -> None:
    batches = [open_batch(session, number) for number in (1, 2, 3)]
    later = [DURING + timedelta(days=14 * i) for i in range(3)]
    loser = member(session, 1, batches[0])
    for earlier, batch_id, at in zip(batches[:-1], batches[1:], later[1:], strict=True):
        record_selection(session, loser.id, earlier, RESULT_NOT_SELECTED)
        join_batch(session, loser.id, batch_id, now=at)
    winner = member(session, 2, batches[2], at=later[2], kk=OTHER_KK)
    record_selection(session, winner.id, batches[2], RESULT_SELECTED)
    session.commit()
    close_batch(session, batches[2], AFTER + timedelta(days=28))
    session.commit()
    select_batch(sessions.begin, batches[2], AFTER + timedelta(days=28), places=1)
    publish_results(session, batches[2], AFTER + timedelta(days=29))
    session.commit()
    assert [m.text_key for m in messages_of(session, loser.id)] == [
        TEXT_NOT_SELECTED_AGAIN
    ]
    assert [m.text_key for m in messages_of(session, winner.id)] == [TEXT_SELECTED]
