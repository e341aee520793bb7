"""Stock Rasa 3.6 trained on our data: the model, cached under models/ by a hash.

`python -m bench.e2e.stock` trains it if missing and prints its path. Training
takes about 18 minutes on the project's 2 cores, so the model is kept as
`models/stock-<hash>.tar.gz`, the hash covering bench/configs/stock.yml (its
content), domain.yml and every file under data/: a change to any of them
trains anew.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "bench" / "configs" / "stock.yml"
MODELS = ROOT / "models"
TRAIN_TIMEOUT = 3 * 3600.0


def data_hash() -> str:
    """A short hash of the stock config, the domain and the training data. The
    config counts by its content, not its comments: training writes the default
    pipeline and policies into it as comments, as `rasa init`'s file shows."""
    import yaml

    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for path in [ROOT / "domain.yml", *sorted((ROOT / "data").rglob("*.yml"))]:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_path() -> Path:
    """Where the stock model for the current data is (or will be) cached."""
    return MODELS / f"stock-{data_hash()}.tar.gz"


def ensure_model(log: Path | None = None) -> Path:
    """The cached stock model, trained first if the data changed."""
    path = model_path()
    if path.exists():
        return path
    MODELS.mkdir(exist_ok=True)
    log = log or ROOT / "var" / "train-stock.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"training stock Rasa on our data into {path.name} (about 18 min; "
          f"log: {log})", flush=True)  # fmt: skip
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false",
           "TF_CPP_MIN_LOG_LEVEL": "2"}  # fmt: skip
    with log.open("wb") as out:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "rasa"), "train", "--config",
             str(CONFIG), "--domain", "domain.yml", "--data", "data", "--out",
             str(MODELS), "--fixed-model-name", path.name.removesuffix(".tar.gz")],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            timeout=TRAIN_TIMEOUT, check=False,
        )  # fmt: skip
    if done.returncode != 0 or not path.exists():
        raise SystemExit(f"stock training failed (exit {done.returncode}); see {log}")
    return path


if __name__ == "__main__":
    print(ensure_model())
