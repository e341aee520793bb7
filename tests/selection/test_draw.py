"""The draw: reproducible from the seed, within the places, the KK cap applied."""

from __future__ import annotations

from bot.registry.models import RESULT_NOT_SELECTED, RESULT_SELECTED
from bot.selection.draw import EXCLUDED_KK_FULL, Candidate, draw

KK_A = "3174010101200001"


def _pool(count: int) -> list[Candidate]:
    return [Candidate(i, f"31740101012{i:05d}", None) for i in range(1, count + 1)]


def _chosen(decisions: list) -> list[int]:
    return sorted(d.membership_id for d in decisions if d.result == RESULT_SELECTED)


def test_the_same_seed_gives_the_same_draw_whatever_the_order() -> None:
    pool = _pool(200)
    first = draw(pool, "seed-1", 50)
    again = draw(list(reversed(pool)), "seed-1", 50)
    assert _chosen(first) == _chosen(again)
    assert {d.membership_id: d.draw_rank for d in first} == {
        d.membership_id: d.draw_rank for d in again
    }
    assert _chosen(draw(pool, "seed-2", 50)) != _chosen(first)


def test_never_more_than_the_places_and_everyone_decided() -> None:
    decisions = draw(_pool(30), "s", 12)
    assert len(_chosen(decisions)) == 12
    assert len(decisions) == 30
    assert sorted(d.draw_rank for d in decisions) == list(range(1, 31))
    assert len(_chosen(draw(_pool(5), "s", 12))) == 5


def test_excluded_members_are_not_selected_with_their_reason_and_no_rank() -> None:
    pool = [*_pool(3), Candidate(99, KK_A, None, "nik_unverified")]
    decisions = {d.membership_id: d for d in draw(pool, "s", 10)}
    assert decisions[99].result == RESULT_NOT_SELECTED
    assert decisions[99].excluded_reason == "nik_unverified"
    assert decisions[99].draw_rank is None
    assert len(_chosen(list(decisions.values()))) == 3


def test_the_kk_cap_counts_earlier_participants_and_this_draw() -> None:
    family = [Candidate(i, KK_A, 2) for i in range(1, 5)]
    assert len(_chosen(draw(family, "s", 10))) == 2
    assert len(_chosen(draw(family, "s", 10, {KK_A: 1}))) == 1
    refused = [d for d in draw(family, "s", 10) if d.result == RESULT_NOT_SELECTED]
    assert {d.excluded_reason for d in refused} == {EXCLUDED_KK_FULL}
    uncapped = [Candidate(i, KK_A, None) for i in range(1, 5)]
    assert len(_chosen(draw(uncapped, "s", 10))) == 4
