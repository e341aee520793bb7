"""Rasa 3.6 itself, configured by the deployed endpoints file, keeps a
conversation in PostgreSQL and locks it in Redis: the stores several Rasa pods
share. Runs against the test servers (PostgreSQL: tests/postgres.py; Redis:
127.0.0.1:6379, `TEST_REDIS_URL` overrides it); unreachable: skipped, or failed
under CI=true."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit

import pytest

from tests.deploy.wiring import env_of, read_rasa_endpoints
from tests.postgres import postgres_database

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def redis_or_skip() -> tuple[str, int]:
    """The test Redis's host and port (skips or fails when it is unreachable)."""
    import redis

    parts = urlsplit(REDIS_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        redis.Redis(host=host, port=port, socket_timeout=3).ping()
    except redis.exceptions.RedisError as exc:
        reason = f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " under CI")
        pytest.skip(reason)
    return host, port


async def test_deployed_endpoints_give_rasa_shared_tracker_and_lock_stores() -> None:
    from rasa.core.lock_store import LockStore, RedisLockStore
    from rasa.core.tracker_store import TrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.rasa_tracker_store import TurnSQLTrackerStore

    redis_host, redis_port = redis_or_skip()
    with postgres_database("rasa_tracker") as url:
        database = urlsplit(url)
        env = env_of("rasa") | {
            "TRACKER_DB_HOST": str(database.hostname),
            "TRACKER_DB_PORT": str(database.port or 5432),
            "TRACKER_DB_NAME": database.path.lstrip("/"),
            "TRACKER_DB_USER": database.username or "postgres",
            "TRACKER_DB_PASSWORD": database.password or "",
            "REDIS_HOST": redis_host,
            "REDIS_PORT": str(redis_port),
            "REDIS_PASSWORD": "",
        }
        endpoints = read_rasa_endpoints(env)
        store = TrackerStore.create(endpoints.tracker_store, Domain.empty())
        locks = LockStore.create(endpoints.lock_store)
        assert isinstance(store, TurnSQLTrackerStore)  # Rasa's SQL store, subclassed
        assert isinstance(locks, RedisLockStore)
        sender = f"deploy-test-{uuid.uuid4().hex}"
        tracker = DialogueStateTracker(sender, [])
        tracker.update(UserUttered("halo"))
        try:
            await store.save(tracker)
            kept = await store.retrieve(sender)
            assert kept is not None
            assert [e.text for e in kept.events if isinstance(e, UserUttered)] == [
                "halo"
            ]
            async with locks.lock(sender):
                assert locks.red.exists(locks.key_prefix + sender)
            assert not locks.red.exists(locks.key_prefix + sender)
        finally:
            store.engine.dispose()
