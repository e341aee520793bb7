"""Where Rasa's CPU goes per message, from a cProfile of its event loop's thread
(bench.e2e.rasa_timed; CPU-time clock, so waiting is not counted).

Two views: each function's own time summed by package (a partition of the
profiled CPU), and the cumulative time of Rasa's steps of a turn (these nest:
the action server call includes building its JSON body)."""

from __future__ import annotations

import pstats
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

WAIT_FOR_FILE = 15.0
PACKAGES = (
    ("rasa/nlu/", "Rasa NLU components"),
    ("rasa/core/policies/", "Rasa policies"),
    ("rasa/shared/nlu/", "Rasa NLU features and messages"),
    ("rasa/shared/core/", "Rasa trackers, events, domain"),
    ("rasa/core/", "Rasa core (processor, actions, channels, stores)"),
    ("rasa/engine/", "Rasa graph runner"),
    ("rasa/utils/", "Rasa utils (endpoints, io)"),
    ("/bot/", "our code in Rasa (gateway channel, replay, normaliser)"),
    ("/sklearn/", "scikit-learn"),
    ("/scipy/", "SciPy"),
    ("/numpy/", "NumPy"),
    ("crfsuite", "CRFsuite"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/sanic", "Sanic (HTTP server)"),
    ("/aiohttp/", "aiohttp (action server client)"),
    ("/asyncio/", "asyncio"),
    ("/json/", "json"),
    ("/logging/", "logging"),
    ("/jsonpickle/", "jsonpickle"),
    ("/copy.py", "copy (deepcopy)"),
)
STEPS = (
    ("processor.py", "_parse_message_with_graph", "NLU"),
    ("processor.py", "_predict_next_with_tracker", "policies"),
    ("tracker_store.py", "retrieve", "tracker store: load"),
    ("tracker_store.py", "save", "tracker store: save"),
    ("trackers.py", "copy", "tracker copy before an action"),
    ("action.py", "_action_call_format", "action server call body (tracker JSON)"),
    ("endpoints.py", "request", "action server calls (client side)"),
    ("processor.py", "_send_bot_messages", "sending bot messages"),
    ("nlg/response.py", "generate", "responses (templates)"),
    ("rasa_channel.py", "receive", "the gateway channel's handler, all of a turn"),
)


def _package(filename: str, function: str) -> str:
    for marker, label in PACKAGES:
        if marker in filename:
            return label
    if filename == "~":  # builtins: C functions
        if "sqlite3" in function or "psycopg2" in function or "execute" in function:
            return "database driver (C)"
        return "built-in functions (C)"
    return "other Python"


def hot_spots(path: Path, messages: int) -> dict[str, Any]:
    """CPU ms per message by package and by step of a turn, and the top
    functions by own time."""
    deadline = time.monotonic() + WAIT_FOR_FILE
    stats: Any = None
    while stats is None and time.monotonic() < deadline:
        try:  # written by Rasa's signal handler: maybe not yet, or not whole
            stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
        except (OSError, EOFError, ValueError):
            time.sleep(0.3)
    if stats is None:
        return {"error": "no profile written"}
    n = max(messages, 1)
    by_package: dict[str, float] = defaultdict(float)
    steps: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, _, function), (_, _, own, cumulative, _) in stats.items():
        total += own
        by_package[_package(filename, function)] += own
        for file_part, name, label in STEPS:
            if filename.endswith(file_part) and function == name:
                steps[label] = max(steps[label], cumulative)
    top = sorted(stats.items(), key=lambda item: -item[1][2])[:15]
    return {
        "profiled_cpu_ms_per_message": round(total * 1000 / n, 2),
        "by_package_ms": {
            k: round(v * 1000 / n, 2)
            for k, v in sorted(by_package.items(), key=lambda kv: -kv[1])
        },
        "steps_ms": {k: round(v * 1000 / n, 2) for k, v in steps.items()},
        "top_own_ms": [
            (f"{Path(f).name}:{line} {fn}", round(v[2] * 1000 / n, 3))
            for (f, line, fn), v in top
        ],
    }
