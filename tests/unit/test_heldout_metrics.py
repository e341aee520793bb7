"""Each figure of the held-out measurement counts its own defect, and only it."""

import pytest

from bench.heldout_metrics import (
    FALLBACK,
    Outcome,
    figures,
    headline,
    per_intent_table,
    percentile,
    top_intent,
)


def outcome(expected: str, answered: str, ms: float = 1.0) -> Outcome:
    return Outcome(expected, answered, answered, 0.9, ms)


# 10 in scope, 4 chatter, made up so every figure has a different value.
MADE_UP = [
    *(outcome("nik_problem", "nik_problem") for _ in range(5)),
    outcome("nik_problem", FALLBACK),  # unsure: not wrong with confidence
    outcome("nik_problem", "otp_problem"),  # wrong with confidence
    outcome("report_scam", "out_of_scope"),  # wrong with confidence, as chatter
    outcome("report_scam", "report_scam"),
    outcome("greet", "greet"),
    outcome("out_of_scope", "out_of_scope"),
    outcome("out_of_scope", FALLBACK),  # fallback is right for chatter
    outcome("out_of_scope", "greet"),  # misfire: chit-chat is an intent too
    outcome("out_of_scope", "ask_batch"),  # misfire
]


def test_correct_counts_right_answers_and_fallback_only_for_chatter() -> None:
    f = figures(MADE_UP)
    assert (f.messages, f.in_scope, f.chatter) == (14, 10, 4)
    assert f.correct == pytest.approx(9 / 14)
    assert f.correct_in_scope == pytest.approx(7 / 10)


def test_wrong_with_confidence_excludes_fallback_and_includes_out_of_scope() -> None:
    f = figures(MADE_UP)
    assert f.wrong_with_confidence == pytest.approx(2 / 10)
    assert f.wrong_as_out_of_scope == pytest.approx(1 / 10)
    assert f.fallback_in_scope == pytest.approx(1 / 10)


def test_chatter_misfire_counts_any_intent_but_out_of_scope_and_fallback() -> None:
    assert figures(MADE_UP).chatter_misfire == pytest.approx(2 / 4)


def test_per_intent_accuracy_and_confusion() -> None:
    f = figures(MADE_UP)
    assert f.per_intent["nik_problem"] == (7, 5)
    assert f.per_intent["out_of_scope"] == (4, 2)
    taken = {"nik_problem": 5, FALLBACK: 1, "otp_problem": 1}
    assert f.confusion["nik_problem"] == taken
    table = per_intent_table(f)
    assert "| nik_problem | 7 | 71% |" in table
    assert "| report_scam | 2 | 50% | out_of_scope 1 |" in table


def test_parse_time_percentiles() -> None:
    timed = [outcome("greet", "greet", ms=float(ms)) for ms in range(1, 101)]
    f = figures(timed)
    assert f.parse_ms_p50 == pytest.approx(50.5)
    assert f.parse_ms_p95 == 95.0
    assert percentile([], 0.95) == 0.0


def test_headline_marks_missed_targets() -> None:
    text = headline(figures(MADE_UP))
    assert "| correct (all messages) | 64.3% | ≥ 85.0% | **not met** |" in text
    assert "| parse p50 | 1.0 ms | ≤ 5.0 ms | met |" in text
    perfect = headline(figures([outcome("greet", "greet")]))
    assert "not met" not in perfect


def test_top_intent_skips_the_fallback() -> None:
    parse = {
        "intent": {"name": FALLBACK, "confidence": 0.5},
        "intent_ranking": [
            {"name": FALLBACK, "confidence": 0.5},
            {"name": "ask_batch", "confidence": 0.41},
        ],
    }
    assert top_intent(parse) == ("ask_batch", 0.41)
