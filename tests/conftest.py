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
