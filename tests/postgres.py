"""Fresh PostgreSQL databases for tests.

The server is `postgresql://postgres@127.0.0.1:5432/test` (`TEST_POSTGRES_URL`
overrides it). Unreachable: the test is skipped with the reason, or failed when
CI=true. `TEST_DB_PREFIX` is put before every database's name (runs that share
a server keep to names of their own).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """The URL of a new, empty database named `<prefix>_<random>`, dropped
    afterwards (skips or fails the test when the server is unreachable)."""
    admin = create_engine(
        POSTGRES_URL,
        future=True,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL at {POSTGRES_URL} is unreachable ({type(exc).__name__})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " under CI")
        pytest.skip(reason)
    name = f"{os.environ.get('TEST_DB_PREFIX', '')}{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


BACKENDS = ("sqlite", "postgresql")
"""The databases the repository tests run on (PostgreSQL required under CI)."""


@contextmanager
def fresh_database(
    backend: str, directory: Path, prefix: str = "test"
) -> Iterator[str]:
    """The URL of a new empty database of `backend` (`sqlite`: a file in
    `directory`; `postgresql`: see :func:`postgres_database`)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory}/{uuid.uuid4().hex[:8]}.db"
    else:
        with postgres_database(prefix) as url:
            yield url


@contextmanager
def engine_with_tables(
    backend: str, directory: Path, metadata: MetaData, prefix: str = "test"
) -> Iterator[Engine]:
    """An engine (`bot.db.make_engine`) on a new database of `backend` with
    `metadata`'s tables, disposed of afterwards."""
    from bot.db import make_engine

    with fresh_database(backend, directory, prefix) as url:
        made = make_engine(url)
        try:
            metadata.create_all(made)
            yield made
        finally:
            made.dispose()


@contextmanager
def migrated_sessions(
    backend: str, directory: Path, prefix: str = "test"
) -> Iterator[sessionmaker]:
    """A sessionmaker (`bot.db.make_sessionmaker`) on a new database of
    `backend` migrated to the latest schema, its engine disposed of afterwards."""
    from bot.db import make_engine, make_sessionmaker
    from bot.schema import upgrade

    with fresh_database(backend, directory, prefix) as url:
        upgrade(url)
        made = make_engine(url)
        try:
            yield make_sessionmaker(made)
        finally:
            made.dispose()
