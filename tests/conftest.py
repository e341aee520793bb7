"""Shared test helpers: paths and the trained model."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MODEL = ROOT / "models" / "prakerja.tar.gz"


def require(path: Path, why: str) -> Path:
    """Return path if it exists; skip (or fail under CI=true) otherwise."""
    if path.exists():
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{path} is missing under CI: {why}")
    pytest.skip(f"{path} is missing: {why}")


SLOWEST_FIRST = (
    "tests/soak/",
    "tests/fuzz/",
    "tests/integration/",
    "tests/dialogue/",
    "tests/console_e2e/",
    "tests/nlu/test_model.py",
    "tests/gateway/test_rasa_replay.py",
)
"""The files that take longest (one to several minutes each; see "Test suite
time" in docs/benchmarks.md), longest first."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slowest files first, keeping the order within each file.

    pytest-xdist hands out files in this order (`make test`: two processes, a
    file per process), so the long ones start at once and the many short ones
    fill in around them, instead of one process ending alone on a long file."""

    def rank(item: pytest.Item) -> int:
        return next(
            (
                index
                for index, prefix in enumerate(SLOWEST_FIRST)
                if item.nodeid.startswith(prefix)
            ),
            len(SLOWEST_FIRST),
        )

    items.sort(key=rank)
