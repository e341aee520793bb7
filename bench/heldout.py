"""Measure the trained model on the held-out messages (bench/nlu_heldout/).

The model is loaded once in-process with Rasa's Agent. Each message goes in as
the gateway hands it to Rasa (personal data replaced by tokens shaped like the
values, bot.privacy.vault), and `parse_message` is timed alone with
time.perf_counter after a warm-up. Figures: bench/heldout_metrics.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from bench.heldout_metrics import (
    Figures,
    Outcome,
    figures,
    headline,
    is_correct,
    per_intent_table,
    top_intent,
)
from bot.privacy.detect import replace_personal_data
from bot.privacy.vault import new_token

HELDOUT = Path("bench/nlu_heldout/messages.yml")
# Written separately to tune on (same format); never trained on either.
DEV = Path("bench/nlu_dev/messages.yml")
MODEL = Path("models/prakerja.tar.gz")
WARM_UP = ["halo", "gmn cara daftar", "nik sy gk kebaca", "resep rendang", "STOP"]


def load_heldout(path: Path = HELDOUT) -> list[tuple[str, str]]:
    """(text, expected intent) for every held-out message."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        (str(text), intent)
        for intent, texts in data["messages"].items()
        for text in texts
    ]


def as_gateway_sends(text: str) -> str:
    """`text` as Rasa receives it: each piece of personal data a fresh token."""
    return replace_personal_data(text, lambda span, _typed: new_token(span.kind))


def fallback_threshold(config: Path = Path("config.yml")) -> float:
    """The FallbackClassifier threshold of the pipeline."""
    pipeline = yaml.safe_load(config.read_text(encoding="utf-8"))["pipeline"]
    for component in pipeline:
        if component["name"] == "FallbackClassifier":
            return float(component["threshold"])
    raise ValueError(f"{config} has no FallbackClassifier")


async def measure(model: Path, items: list[tuple[str, str]]) -> list[Outcome]:
    """Parse every message once with the model, timing each parse."""
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    for text in WARM_UP:
        await agent.parse_message(text)
    outcomes = []
    for text, expected in items:
        sent = as_gateway_sends(text)
        started = time.perf_counter()
        parse: dict[str, Any] = await agent.parse_message(sent)
        elapsed_ms = (time.perf_counter() - started) * 1000
        top, confidence = top_intent(parse)
        outcomes.append(
            Outcome(
                expected=expected,
                answered=(parse.get("intent") or {}).get("name") or "",
                top=top,
                confidence=confidence,
                parse_ms=elapsed_ms,
            )
        )
    return outcomes


def misses(items: list[tuple[str, str]], outcomes: list[Outcome]) -> str:
    """Each wrongly understood message (never shown to whoever tunes)."""
    lines = [
        "| message | expected | answered | best intent (confidence) |",
        "|---|---|---|---|",
    ]
    for (text, _), o in zip(items, outcomes, strict=True):
        if not is_correct(o):
            shown = text.replace("|", "/")
            best = f"{o.top} ({o.confidence:.2f})"
            lines.append(f"| {shown} | {o.expected} | {o.answered} | {best} |")
    return "\n".join(lines)


def run(model: Path, heldout: Path, aggregates_only: bool, out: Path) -> Figures:
    """Measure, print the report and write the JSON; return the figures."""
    items = load_heldout(heldout)
    outcomes = asyncio.run(measure(model, items))
    result = figures(outcomes)
    threshold = fallback_threshold()
    print(f"Model {model}, fallback threshold {threshold} (config.yml)\n")
    print(headline(result) + "\n")
    print(per_intent_table(result))
    record: dict[str, Any] = {"threshold": threshold, **asdict(result)}
    if not aggregates_only:
        print("\nMisunderstood messages:\n")
        print(misses(items, outcomes))
        record["outcomes"] = [
            {"text": text, **asdict(o)}
            for (text, _), o in zip(items, outcomes, strict=True)
        ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    return result
