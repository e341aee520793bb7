"""Measure NLU: the trained model on the held-out set, or a pipeline comparison.

Usage: python -m bench.nlu [--aggregates-only] [--model PATH]
       python -m bench.nlu --dev [--model PATH]
       python -m bench.nlu --compare [--configs light diet] [--folds 5] [--nusax DIR]

Default (`make bench-nlu`): the trained model on bench/nlu_heldout/messages.yml
(bench/heldout.py): accuracy overall and per intent, what each intent was taken
for, answers wrong with confidence, misfires on unrelated chatter, parse time
p50/p95. `--aggregates-only` prints no message text (for whoever tunes the
model). Results go to results/bench/nlu_heldout.json.

`--dev` (`make bench-nlu-dev`): the same measurement on the development set
bench/nlu_dev/messages.yml, misses included: the set to tune on. Results go to
results/bench/nlu_dev.json.

`--compare` (`make bench-nlu-compare`): for each config in bench/configs/:
stratified k-fold cross-validation of the intent classifier on data/nlu
(seeded), then a model trained on all data parses the held-out NusaX sentences
(valid.csv to choose the fallback threshold, test.csv to report the misfire rate:
unrelated text that would get a Prakerja intent above the threshold).
Results go to results/bench/nlu.json and a Markdown summary to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.heldout import DEV, HELDOUT, MODEL
from bench.heldout import run as run_heldout
from bench.heldout_metrics import top_intent

SEED = 42
OUT_OF_SCOPE = "out_of_scope"
THRESHOLDS = [round(0.05 * i, 2) for i in range(0, 20)]
CONFIG_DIR = Path("bench/configs")
# The chosen pipeline is measured from config.yml itself, so the two cannot drift.
CONFIG_FILES = {"light_norm": Path("config.yml")}
RESULTS = Path("results/bench")


@dataclass
class Prediction:
    """One parsed message: the true label (if known), top intent and confidence."""

    text: str
    truth: str | None
    intent: str
    confidence: float
    seconds: float


@dataclass
class ConfigResult:
    """Everything measured for one pipeline."""

    name: str
    weighted_f1: float = 0.0
    macro_f1: float = 0.0
    accuracy: float = 0.0
    train_seconds_per_fold: float = 0.0
    latency_ms_median: float = 0.0
    latency_ms_p95: float = 0.0
    threshold: float = 0.0
    misfire_rate_test: float = 0.0
    misfire_rate_valid: float = 0.0
    indomain_at_threshold: dict[str, float] = field(default_factory=dict)
    threshold_table: list[dict[str, float]] = field(default_factory=list)


def read_nusax(path: Path) -> list[str]:
    """Sentences of one NusaX split."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [" ".join(row["text"].split()) for row in csv.DictReader(handle)]


def train(config: Path, nlu_file: Path, out_dir: Path, name: str) -> tuple[str, float]:
    """Train an NLU-only model; return its path and the training seconds."""
    from rasa.model_training import train_nlu

    started = time.perf_counter()
    model = train_nlu(
        config=str(config), nlu_data=str(nlu_file), output=str(out_dir),
        fixed_model_name=name,
    )
    if model is None:
        raise RuntimeError(f"training {name} failed")
    return model, time.perf_counter() - started


async def parse_all(
    model: str, items: list[tuple[str, str | None]]
) -> list[Prediction]:
    """Parse each text with the model, timing every call."""
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    await agent.parse_message("halo")  # warm-up
    out = []
    for text, truth in items:
        started = time.perf_counter()
        parse = await agent.parse_message(text)
        seconds = time.perf_counter() - started
        intent, confidence = top_intent(parse)
        out.append(Prediction(text, truth, intent, confidence, seconds))
    return out


def misfire_rate(preds: list[Prediction], threshold: float) -> float:
    """Share of unrelated sentences answered with a Prakerja intent."""
    fired = [
        p for p in preds if p.intent != OUT_OF_SCOPE and p.confidence >= threshold
    ]
    return len(fired) / len(preds) if preds else 0.0


def indomain_at(preds: list[Prediction], threshold: float) -> dict[str, float]:
    """In-domain outcome shares at a threshold: right, sent to fallback, wrong."""
    n = len(preds) or 1
    accepted = [p for p in preds if p.confidence >= threshold]
    right = sum(p.intent == p.truth for p in accepted)
    return {
        "answered_right": right / n,
        "fallback": (len(preds) - len(accepted)) / n,
        "answered_wrong": (len(accepted) - right) / n,
    }


def choose_threshold(
    cv: list[Prediction], valid: list[Prediction]
) -> tuple[float, list[dict[str, float]]]:
    """Pick the threshold that maximises right answers minus misfires and errors."""
    table = []
    for t in THRESHOLDS:
        row = {"threshold": t, **indomain_at(cv, t), "misfire_valid": 0.0}
        row["misfire_valid"] = misfire_rate(valid, t)
        row["score"] = row["answered_right"] - row["answered_wrong"] - row[
            "misfire_valid"
        ]
        table.append(row)
    best = max(table, key=lambda r: (round(r["score"], 6), -r["threshold"]))
    return best["threshold"], table


def run_config(name: str, folds: int, nusax: Path, work: Path) -> ConfigResult:
    """Cross-validate one config, then measure latency and misfires."""
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold

    config = CONFIG_FILES.get(name, CONFIG_DIR / f"{name}.yml")
    data = TrainingData().merge(
        *[load_data(str(f)) for f in sorted(Path("data/nlu").glob("*.yml"))]
    )
    examples = data.intent_examples
    labels = [m.get("intent") for m in examples]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    cv: list[Prediction] = []
    train_times = []
    for fold, (train_idx, test_idx) in enumerate(splitter.split(examples, labels)):
        fold_data = TrainingData(
            training_examples=[examples[i] for i in train_idx],
            entity_synonyms=data.entity_synonyms,
            regex_features=data.regex_features,
            lookup_tables=data.lookup_tables,
        )
        nlu_file = work / f"{name}-fold{fold}.yml"
        nlu_file.write_text(fold_data.nlu_as_yaml(), encoding="utf-8")
        model, seconds = train(config, nlu_file, work, f"{name}-fold{fold}")
        train_times.append(seconds)
        items = [(examples[i].get("text"), labels[i]) for i in test_idx]
        cv.extend(asyncio.run(parse_all(model, items)))
        print(f"  {name} fold {fold + 1}/{folds}: {seconds:.0f}s training", flush=True)
    truths = [p.truth for p in cv]
    guesses = [p.intent for p in cv]
    result = ConfigResult(
        name=name,
        weighted_f1=float(f1_score(truths, guesses, average="weighted")),
        macro_f1=float(f1_score(truths, guesses, average="macro")),
        accuracy=float(accuracy_score(truths, guesses)),
        train_seconds_per_fold=statistics.mean(train_times),
    )
    full_model, _ = train(config, Path("data/nlu"), work, f"{name}-full")
    valid = asyncio.run(
        parse_all(full_model, [(t, None) for t in read_nusax(nusax / "valid.csv")])
    )
    test = asyncio.run(
        parse_all(full_model, [(t, None) for t in read_nusax(nusax / "test.csv")])
    )
    latencies = sorted(p.seconds * 1000 for p in test + valid)
    result.latency_ms_median = statistics.median(latencies)
    result.latency_ms_p95 = latencies[int(0.95 * (len(latencies) - 1))]
    result.threshold, result.threshold_table = choose_threshold(cv, valid)
    result.misfire_rate_valid = misfire_rate(valid, result.threshold)
    result.misfire_rate_test = misfire_rate(test, result.threshold)
    result.indomain_at_threshold = indomain_at(cv, result.threshold)
    return result


def markdown(results: list[ConfigResult], folds: int) -> str:
    """The summary table written into docs/benchmarks.md."""
    lines = [
        f"| pipeline | intent F1 weighted ({folds}-fold) | macro F1 | accuracy "
        "| train s/fold | parse ms median | p95 | threshold "
        "| misfires NusaX test | in-domain right / fallback / wrong at threshold |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        d = r.indomain_at_threshold
        lines.append(
            f"| {r.name} | {r.weighted_f1:.4f} | {r.macro_f1:.4f} | {r.accuracy:.4f} "
            f"| {r.train_seconds_per_fold:.0f} | {r.latency_ms_median:.1f} "
            f"| {r.latency_ms_p95:.1f} | {r.threshold:.2f} "
            f"| {r.misfire_rate_test:.1%} | {d['answered_right']:.1%} / "
            f"{d['fallback']:.1%} / {d['answered_wrong']:.1%} |"
        )
    return "\n".join(lines)


def quiet_rasa() -> None:
    """Keep Rasa's per-message debug logs (which carry the text) out of the output."""
    import logging

    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)


def compare(configs: list[str], folds: int, nusax: Path) -> None:
    """Run the pipeline comparison and print the summary."""
    quiet_rasa()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in configs:
            print(f"config {name}", flush=True)
            results.append(run_config(name, folds, nusax, Path(tmp)))
            print(markdown(results[-1:], folds), flush=True)
    (RESULTS / "nlu.json").write_text(
        json.dumps([asdict(r) for r in results], indent=2), encoding="utf-8"
    )
    print(markdown(results, folds))
    best = max(r.weighted_f1 for r in results)
    eligible = [r for r in results if r.weighted_f1 >= best - 0.01]
    fastest = min(eligible, key=lambda r: r.latency_ms_median)
    print(f"\nChoice: {fastest.name} (fastest within one F1 point of {best:.4f})")


def main() -> None:
    """Measure the held-out set, or compare pipelines with --compare."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--compare", action="store_true", help="compare pipelines (slow)"
    )
    parser.add_argument(
        "--configs", nargs="+", default=["light", "light_norm", "diet"]
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--nusax", type=Path, default=Path("../shared/data/nusax-senti-id")
    )
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--heldout", type=Path, default=HELDOUT)
    parser.add_argument(
        "--dev",
        action="store_true",
        help=f"measure on the development set {DEV} (to tune on) instead",
    )
    parser.add_argument(
        "--aggregates-only",
        action="store_true",
        help="print figures only, never a message (for whoever tunes the model)",
    )
    args = parser.parse_args()
    if args.compare:
        compare(args.configs, args.folds, args.nusax)
        return
    quiet_rasa()
    if not args.model.exists():
        parser.error(f"{args.model} does not exist: run `make train` first")
    if args.dev:
        run_heldout(args.model, DEV, args.aggregates_only, RESULTS / "nlu_dev.json")
        return
    run_heldout(
        args.model, args.heldout, args.aggregates_only, RESULTS / "nlu_heldout.json"
    )


if __name__ == "__main__":
    main()
