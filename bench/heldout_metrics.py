"""Figures of the held-out NLU measurement, computed from parsed messages.

Pure functions over `Outcome`s (no Rasa here), so each metric is unit-tested
on made-up predictions (tests/unit/test_heldout_metrics.py).

- *correct*: the intent Rasa acted on is the expected one; for unrelated
  chatter (`out_of_scope`) the fallback is correct as well.
- *wrong with confidence*: an in-scope message answered with another intent
  above the fallback threshold (anything but the expected intent and
  `nlu_fallback`, `out_of_scope` included: the person gets a confident wrong
  answer). Share of the in-scope messages.
- *chatter misfire*: unrelated chatter answered with an in-scope intent
  (anything but `out_of_scope` and `nlu_fallback`). Share of the chatter.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

FALLBACK = "nlu_fallback"
CHATTER = "out_of_scope"
# Targets of issue 10 (points 3 and 4).
TARGETS = {
    "correct": 0.85,
    "wrong_with_confidence": 0.05,
    "chatter_misfire": 0.02,
    "parse_ms_p50": 5.0,
    "parse_ms_p95": 15.0,
}


@dataclass(frozen=True)
class Outcome:
    """One held-out message as the model took it.

    `answered` is the intent Rasa acted on (`nlu_fallback` below the
    threshold); `top` and `confidence` are the best real intent behind it.
    """

    expected: str
    answered: str
    top: str
    confidence: float
    parse_ms: float


@dataclass
class Figures:
    """Aggregates of one run: no message text, safe to show a tuner."""

    messages: int
    in_scope: int
    chatter: int
    correct: float
    correct_in_scope: float
    wrong_with_confidence: float
    wrong_as_out_of_scope: float
    fallback_in_scope: float
    chatter_misfire: float
    parse_ms_p50: float
    parse_ms_p95: float
    per_intent: dict[str, tuple[int, int]] = field(default_factory=dict)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)


def top_intent(parse: dict[str, Any]) -> tuple[str, float]:
    """The best intent other than the fallback, with its confidence."""
    for item in parse.get("intent_ranking") or []:
        if item["name"] != FALLBACK:
            return item["name"], float(item["confidence"])
    intent = parse.get("intent") or {}
    return intent.get("name", FALLBACK), float(intent.get("confidence", 0.0))


def is_correct(outcome: Outcome) -> bool:
    """Whether the answer is the right one (the fallback is right for chatter)."""
    if outcome.expected == CHATTER:
        return outcome.answered in (CHATTER, FALLBACK)
    return outcome.answered == outcome.expected


def is_wrong_with_confidence(outcome: Outcome) -> bool:
    """An in-scope message answered, above the threshold, with another intent."""
    return outcome.expected != CHATTER and outcome.answered not in (
        outcome.expected,
        FALLBACK,
    )


def is_misfire(outcome: Outcome) -> bool:
    """Unrelated chatter answered with an in-scope intent."""
    return outcome.expected == CHATTER and outcome.answered not in (CHATTER, FALLBACK)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (`share` in 0..1) of `values`."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def figures(outcomes: list[Outcome]) -> Figures:
    """Every aggregate of the measurement."""
    in_scope = [o for o in outcomes if o.expected != CHATTER]
    chatter = [o for o in outcomes if o.expected == CHATTER]
    per_intent: dict[str, tuple[int, int]] = {}
    confusion: dict[str, Counter[str]] = {}
    for o in outcomes:
        n, right = per_intent.get(o.expected, (0, 0))
        per_intent[o.expected] = (n + 1, right + is_correct(o))
        confusion.setdefault(o.expected, Counter())[o.answered] += 1
    times = [o.parse_ms for o in outcomes]
    return Figures(
        messages=len(outcomes),
        in_scope=len(in_scope),
        chatter=len(chatter),
        correct=_share(sum(map(is_correct, outcomes)), len(outcomes)),
        correct_in_scope=_share(sum(map(is_correct, in_scope)), len(in_scope)),
        wrong_with_confidence=_share(
            sum(map(is_wrong_with_confidence, in_scope)), len(in_scope)
        ),
        wrong_as_out_of_scope=_share(
            sum(o.answered == CHATTER for o in in_scope), len(in_scope)
        ),
        fallback_in_scope=_share(
            sum(o.answered == FALLBACK for o in in_scope), len(in_scope)
        ),
        chatter_misfire=_share(sum(map(is_misfire, chatter)), len(chatter)),
        parse_ms_p50=statistics.median(times) if times else 0.0,
        parse_ms_p95=percentile(times, 0.95),
        per_intent=dict(sorted(per_intent.items())),
        confusion={k: dict(v.most_common()) for k, v in sorted(confusion.items())},
    )


def _mark(value: float, target: float, at_most: bool) -> str:
    met = value <= target if at_most else value >= target
    return "met" if met else "**not met**"


def headline(f: Figures) -> str:
    """The figures beside the issue's targets, as a Markdown table."""
    rows = [
        ("correct (all messages)", f.correct, "correct", False),
        ("wrong with confidence (in scope)", f.wrong_with_confidence,
         "wrong_with_confidence", True),
        ("chatter misfires", f.chatter_misfire, "chatter_misfire", True),
        ("parse p50", f.parse_ms_p50, "parse_ms_p50", True),
        ("parse p95", f.parse_ms_p95, "parse_ms_p95", True),
    ]
    lines = ["| figure | measured | target | |", "|---|---|---|---|"]
    for name, value, key, at_most in rows:
        target = TARGETS[key]
        unit = (lambda x: f"{x:.1f} ms") if key.startswith("parse") else (
            lambda x: f"{x:.1%}"
        )
        bound = ("≤ " if at_most else "≥ ") + unit(target)
        mark = _mark(value, target, at_most)
        lines.append(f"| {name} | {unit(value)} | {bound} | {mark} |")
    lines += [
        "",
        f"{f.messages} messages: {f.in_scope} in scope, {f.chatter} unrelated chatter. "
        f"In scope: {f.correct_in_scope:.1%} correct, {f.fallback_in_scope:.1%} sent "
        f"to the fallback, {f.wrong_with_confidence:.1%} wrong with confidence "
        f"({f.wrong_as_out_of_scope:.1%} taken for unrelated talk).",
    ]
    return "\n".join(lines)


def per_intent_table(f: Figures) -> str:
    """Accuracy per expected intent and what its messages were taken for."""
    lines = [
        "| expected intent | messages | correct | taken for (count) |",
        "|---|---|---|---|",
    ]
    for intent, (n, right) in f.per_intent.items():
        taken = ", ".join(
            f"{answered} {count}"
            for answered, count in f.confusion[intent].items()
            if answered != intent
        )
        lines.append(f"| {intent} | {n} | {right / n:.0%} | {taken or '-'} |")
    return "\n".join(lines)
