"""`python -m bench.e2e.rasa_timed run ...`: `rasa run`, timing where each turn goes.

Wraps Rasa's own methods before starting it (nothing in Rasa's code is changed):
the NLU graph (`MessageProcessor._parse_message_with_graph`) and each of its
nodes, the policy graph (`_predict_next_with_tracker`) and each of its nodes, the
SQL tracker store's `retrieve` and `save`, the tracker's `copy` (Rasa replays
every event of the session into a new tracker before each action) and
`current_state` (the tracker as JSON: the body of each action server call, the
REST answer), every action run (`RemoteAction`, or
in Rasa: responses, forms, listen), every request to the action server
(`EndpointConfig.request`: custom actions and form validation), the check of
each answer against Rasa's JSON schema (`RemoteAction._validate_action_result`),
and the whole
`handle_message`. Sync parts (NLU, policies, tracker store: SQLAlchemy is
synchronous in Rasa 3.6) are timed in CPU seconds of the event loop's thread and
in wall seconds; awaited parts (action server round trips, the whole turn) in
wall seconds only, which include waiting for other turns on the same loop.
Totals are written every second as JSON to `$RASA_TIMINGS_FILE`.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

_region: ContextVar[str] = ContextVar("timed_region", default="")


class Timings:
    """Counts, wall seconds and thread-CPU seconds per key (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])

    def add(self, key: str, wall: float, cpu: float) -> None:
        """Record one call."""
        with self._lock:
            total = self._totals[key]
            total[0] += 1
            total[1] += wall
            total[2] += cpu

    def snapshot(self) -> dict[str, dict[str, float]]:
        """The totals so far."""
        with self._lock:
            return {
                key: {"count": int(c), "wall_s": w, "cpu_s": u}
                for key, (c, w, u) in self._totals.items()
            }


TIMINGS = Timings()


def _sync(owner: Any, name: str, key: str, region: str = "") -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        token = _region.set(region) if region else None
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            TIMINGS.add(key, time.perf_counter() - wall, time.thread_time() - cpu)
            if token is not None:
                _region.reset(token)

    setattr(owner, name, timed)


def _async(owner: Any, name: str, key: str | Callable[..., str]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return await original(*args, **kwargs)
        finally:
            label = key(*args, **kwargs) if callable(key) else key
            TIMINGS.add(label, time.perf_counter() - wall, time.thread_time() - cpu)

    setattr(owner, name, timed)


def _graph_node(owner: Any) -> None:
    original = owner.__call__

    @functools.wraps(original)
    def timed(self: Any, *args: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(self, *args)
        finally:
            region = _region.get() or "other"
            TIMINGS.add(
                f"{region}.node.{self._node_name}",
                time.perf_counter() - wall,
                time.thread_time() - cpu,
            )

    owner.__call__ = timed


def _action_key(processor: Any, *args: Any, **kwargs: Any) -> str:
    from rasa.core.actions.action import RemoteAction

    action = kwargs.get("action", args[0] if args else None)
    kind = "remote" if isinstance(action, RemoteAction) else "in_rasa"
    return f"action.{kind}"


def _request_key(endpoint: Any, *args: Any, **kwargs: Any) -> str:
    body = kwargs.get("json")
    name = body.get("next_action") if isinstance(body, dict) else None
    return f"action_server.request.{name or 'other'}"


def install() -> None:
    """Wrap Rasa's methods (before Rasa loads anything)."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.engine.graph import GraphNode
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    _sync(MessageProcessor, "_parse_message_with_graph", "nlu", region="nlu")
    _sync(MessageProcessor, "_predict_next_with_tracker", "policies", region="policy")
    _graph_node(GraphNode)
    _sync(DialogueStateTracker, "copy", "tracker.copy")
    _sync(DialogueStateTracker, "current_state", "tracker.current_state")
    from bot.rasa_tracker_store import TurnSQLTrackerStore

    for store in (SQLTrackerStore, TurnSQLTrackerStore):  # ours calls neither of Rasa's
        _async(store, "retrieve", "tracker.retrieve")
        _async(store, "save", "tracker.save")
    _async(MessageProcessor, "handle_message", "turn")
    _async(MessageProcessor, "_run_action", _action_key)
    _async(EndpointConfig, "request", _request_key)
    _sync(RemoteAction, "_validate_action_result", "action_response.validate")


def _writer(path: Path) -> None:
    while True:
        time.sleep(1.0)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(TIMINGS.snapshot()), encoding="utf-8")
        temporary.replace(path)


def _profile(path: Path) -> None:
    """cProfile (CPU time) of the event loop's thread: SIGUSR1 starts it,
    SIGUSR2 stops it and saves the statistics to `path`."""
    import cProfile
    import signal

    profiler = cProfile.Profile(time.thread_time)  # CPU, not waiting

    def start(signum: int, frame: Any) -> None:
        profiler.enable()

    def save(signum: int, frame: Any) -> None:
        profiler.disable()
        profiler.dump_stats(str(path))

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, save)


def main() -> None:
    """Install the timers, start the writer (and the profiler when
    $RASA_PROFILE_FILE is set), then run Rasa's command line."""
    install()
    target = os.environ.get("RASA_TIMINGS_FILE")
    if target:
        threading.Thread(target=_writer, args=(Path(target),), daemon=True).start()
    if os.environ.get("RASA_PROFILE_FILE"):
        _profile(Path(os.environ["RASA_PROFILE_FILE"]))
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *sys.argv[1:]]
    rasa_main()


if __name__ == "__main__":
    main()
