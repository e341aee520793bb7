"""The draw: a random order of the eligible members that anyone can reproduce.

Each membership's place in the order is `SHA-256("<seed>:<membership id>")`
(hex, ascending): a pure function of the seed recorded with the batch and the
membership ids, independent of the order rows are read in, of the database and
of the process. Walking that order, a member is selected while places remain and
their family card (KK) is under the policy's cap, counting the KK's earlier
participants and those already selected in this draw. Members left out by the
re-check are not selected, with the reason; they get no rank.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.registry import Decision
from bot.registry.models import RESULT_NOT_SELECTED, RESULT_SELECTED

EXCLUDED_KK_FULL = "kk_full"


@dataclass(frozen=True)
class Candidate:
    """A member of the batch as the re-check left it; `excluded` is the reason
    they cannot be selected (None: eligible). `kk_cap` comes from the member's
    policy version (None: no cap)."""

    membership_id: int
    kk_number: str
    kk_cap: int | None
    excluded: str | None = None


def draw_key(seed: str, membership_id: int) -> str:
    """The membership's sort key in the draw of `seed`."""
    return hashlib.sha256(f"{seed}:{membership_id}".encode()).hexdigest()


def draw(
    candidates: Iterable[Candidate],
    seed: str,
    places: int,
    kk_participants: Mapping[str, int] | None = None,
) -> list[Decision]:
    """One decision per candidate: at most `places` selected, in the order of
    the seed; `kk_participants` counts earlier participants per KK number."""
    if places < 0:
        raise ValueError("places cannot be negative")
    every = list(candidates)
    eligible = sorted(
        (item for item in every if item.excluded is None),
        key=lambda item: draw_key(seed, item.membership_id),
    )
    per_kk: Counter[str] = Counter(kk_participants or {})
    decisions = [
        Decision(item.membership_id, RESULT_NOT_SELECTED, None, item.excluded)
        for item in every
        if item.excluded is not None
    ]
    chosen = 0
    for rank, item in enumerate(eligible, start=1):
        if chosen >= places:
            decisions.append(Decision(item.membership_id, RESULT_NOT_SELECTED, rank))
        elif item.kk_cap is not None and per_kk[item.kk_number] >= item.kk_cap:
            decisions.append(
                Decision(
                    item.membership_id, RESULT_NOT_SELECTED, rank, EXCLUDED_KK_FULL
                )
            )
        else:
            chosen += 1
            per_kk[item.kk_number] += 1
            decisions.append(Decision(item.membership_id, RESULT_SELECTED, rank))
    return decisions
