"""Compare dialogue policies: do rules, forms and memoization cover the dialogue?

Usage: python -m bench.policy [--variants policy_rules policy_ted]

Each variant takes the NLU pipeline of config.yml and the policies of
bench/configs/<variant>.yml, trains a full model, and runs the test stories
(tests/stories) with `rasa test core`. Reports training time, stories passed and
action-level accuracy; results/bench/policy.json keeps the numbers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

RESULTS = Path("results/bench")


def rasa(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the venv's rasa CLI."""
    command = [str(Path(sys.executable).parent / "rasa"), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def count_stories(path: Path) -> int:
    """Number of stories in a folder or file of test stories."""
    files = sorted(path.glob("*.yml")) if path.is_dir() else [path]
    total = 0
    for file in files:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        total += len(data.get("stories") or [])
    return total


def run_variant(name: str, stories: Path, work: Path) -> dict[str, Any]:
    """Train with one policy set and evaluate it on the test stories."""
    config = yaml.safe_load(Path("config.yml").read_text(encoding="utf-8"))
    variant = yaml.safe_load(Path(f"bench/configs/{name}.yml").read_text())
    config["policies"] = variant["policies"]
    config_file = work / f"{name}.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    started = time.perf_counter()
    trained = rasa(
        "train", "--config", str(config_file), "--out", str(work),
        "--fixed-model-name", name, "--quiet",
    )
    train_seconds = time.perf_counter() - started
    if trained.returncode != 0:
        raise RuntimeError(trained.stdout[-2000:] + trained.stderr[-2000:])
    out = work / f"results-{name}"
    started = time.perf_counter()
    rasa(
        "test", "core", "--model", str(work / f"{name}.tar.gz"),
        "--stories", str(stories), "--out", str(out),
    )
    test_seconds = time.perf_counter() - started
    failed_file = out / "failed_test_stories.yml"
    failed = count_stories(failed_file) if failed_file.exists() else 0
    report = json.loads((out / "story_report.json").read_text(encoding="utf-8"))
    total = count_stories(stories)
    return {
        "variant": name,
        "train_seconds": round(train_seconds, 1),
        "test_seconds": round(test_seconds, 1),
        "stories": total,
        "stories_passed": total - failed,
        "action_accuracy": report.get("accuracy"),
        "action_weighted_f1": (report.get("weighted avg") or {}).get("f1-score"),
    }


def main() -> None:
    """Run every variant and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["policy_rules", "policy_ted"])
    parser.add_argument("--stories", type=Path, default=Path("tests/stories"))
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_variant(v, args.stories, Path(tmp)) for v in args.variants]
    (RESULTS / "policy.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print("| policies | train s (whole model) | stories passed | action accuracy |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['train_seconds']} | {r['stories_passed']}/"
            f"{r['stories']} | {r['action_accuracy']} |"
        )


if __name__ == "__main__":
    main()
