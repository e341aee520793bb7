"""The database: one declarative base, engines and sessions (SQLAlchemy 1.4, 2.0 style).

SQLite (the embedded default) runs in WAL mode with a busy timeout and foreign keys;
PostgreSQL (production) pings pooled connections before use. Nothing is created at
import time: the gateway makes its engine when it starts.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, create_engine, make_url
from sqlalchemy.orm import Session, declarative_base, sessionmaker
from sqlalchemy.pool import QueuePool

Base: Any = declarative_base()

SQLITE_BUSY_TIMEOUT_MS = 30_000


def utcnow() -> datetime:
    """The current time as a naive UTC datetime (how every timestamp is stored)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`, tuned for SQLite files or for PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            future=True,
            poolclass=QueuePool,
            pool_size=8,
            max_overflow=8,
            connect_args={
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            },
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, future=True, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    """Sessions bound to `engine`; objects stay readable after commit."""
    return sessionmaker(
        bind=engine, future=True, expire_on_commit=False, class_=Session
    )
