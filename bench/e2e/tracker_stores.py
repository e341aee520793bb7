"""`python -m bench.e2e.tracker_stores TRACKER_DB`: Rasa's tracker stores side by
side on recorded conversations, in one process.

TRACKER_DB is a SQLite tracker store a run left behind (`python -m bench.e2e
--databases sqlite --keep` keeps `rasa_tracker.db` in its work folder). Each of
its conversations is written again, turn by turn, into each store as Rasa's
processor does it (load the tracker, add the turn's events, save it), and the
CPU time of the event loop's thread in `retrieve` and in `save` is summed:
Rasa's `SQLTrackerStore` and ours (`bot.rasa_tracker_store`) each on a fresh
SQLite file, and, with `--redis-url`, Rasa's `RedisTrackerStore` under a key
prefix of its own (its keys deleted afterwards). Prints ms per turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.gateway import machine

ROOT = Path(__file__).resolve().parents[2]


def conversations(path: Path) -> dict[str, list[list[dict[str, Any]]]]:
    """Each sender's events as stored, cut into turns (a turn starts with each
    user message)."""
    found: dict[str, list[list[dict[str, Any]]]] = {}
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT sender_id, data FROM events ORDER BY id")
        for sender, data in rows:
            event = json.loads(data)
            turns = found.setdefault(sender, [[]])
            if event.get("event") == "user" and turns[-1]:
                turns.append([])
            turns[-1].append(event)
    return found


async def replay(store: Any, recorded: dict[str, list[list[dict[str, Any]]]]) -> dict[
    str, float
]:
    """Write every conversation into `store` turn by turn; CPU ms per turn."""
    from rasa.shared.core.events import deserialise_events

    load = save = 0.0
    turns = 0
    for sender, their_turns in recorded.items():
        for events in their_turns:
            started = time.thread_time()
            tracker = await store.retrieve(sender)
            load += time.thread_time() - started
            if tracker is None:
                tracker = await store.create_tracker(sender, append_action_listen=False)
            for event in deserialise_events(events):
                tracker.update(event)
            started = time.thread_time()
            await store.save(tracker)
            save += time.thread_time() - started
            turns += 1
    return {
        "turns": turns,
        "retrieve_ms": round(load * 1000 / turns, 3),
        "save_ms": round(save * 1000 / turns, 3),
    }


def main() -> None:
    """Each store in turn, then one line per store."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tracker_db", type=Path)
    parser.add_argument("--redis-url", help="also Rasa's RedisTrackerStore here")
    args = parser.parse_args()
    from rasa.core.tracker_store import RedisTrackerStore, SQLTrackerStore
    from rasa.shared.core.domain import Domain

    from bot.rasa_tracker_store import TurnSQLTrackerStore

    recorded = conversations(args.tracker_db)
    domain = Domain.load(str(ROOT / "domain.yml"))
    print(machine("sqlite"), f"{len(recorded)} conversations", flush=True)
    with tempfile.TemporaryDirectory() as work:
        for name, cls in (("Rasa's SQLTrackerStore", SQLTrackerStore),
                          ("TurnSQLTrackerStore", TurnSQLTrackerStore)):  # fmt: skip
            store = cls(domain, dialect="sqlite", db=f"{work}/{cls.__name__}.db")
            try:
                print(name, asyncio.run(replay(store, recorded)), flush=True)
            finally:
                store.engine.dispose()
    if args.redis_url:
        from redis import Redis

        prefix = f"bench{uuid.uuid4().hex[:8]}"  # Rasa takes letters and digits only
        client = Redis.from_url(args.redis_url)
        store = RedisTrackerStore(
            domain,
            host=client.connection_pool.connection_kwargs.get("host", "127.0.0.1"),
            port=client.connection_pool.connection_kwargs.get("port", 6379),
            db=client.connection_pool.connection_kwargs.get("db", 0),
            key_prefix=prefix,
        )
        try:
            print("Rasa's RedisTrackerStore", asyncio.run(replay(store, recorded)))
        finally:
            for key in client.scan_iter(f"{store.key_prefix}*"):
                client.delete(key)


if __name__ == "__main__":
    main()
