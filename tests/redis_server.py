"""The test Redis: 127.0.0.1:6379 (`TEST_REDIS_URL` overrides it).

Unreachable: the test is skipped with the reason, or failed when CI=true. Tests
share this server (other runs may use it at the same time): each uses keys of
its own (a random bot token, sender number or key prefix), never FLUSHDB.
"""

from __future__ import annotations

import os
import uuid

import pytest

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def redis_url_or_skip() -> str:
    """The test Redis's URL (skips, or fails under CI, when it is unreachable)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
    except redis.exceptions.RedisError as exc:
        reason = f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " under CI")
        pytest.skip(reason)
    return REDIS_URL


def unique_bot_token() -> str:
    """A Telegram-shaped bot token no other test uses (its own pacing keys)."""
    return f"{uuid.uuid4().int % 10**9 + 10**9}:TEST-{uuid.uuid4().hex}"


def unique_number() -> str:
    """A sender number no other test uses (its own pacing keys)."""
    return f"+1555{uuid.uuid4().int % 10**7:07d}"
