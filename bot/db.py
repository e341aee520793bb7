"""The database: one declarative base, engines and sessions (SQLAlchemy 1.4, 2.0 style).

SQLite (the embedded default) runs in WAL mode with a busy timeout and foreign keys;
PostgreSQL (production) pings a pooled connection before use when it lay idle
(`PING_AFTER_IDLE_S`) and bounds connecting, statements and lock waits. Engines
hide statement parameters in errors and logs (they can be phone numbers or
message text). Reads that change nothing run outside a transaction
(`reading`, `read_connection`, `read_session`): on PostgreSQL no `BEGIN`
before them and no `ROLLBACK` after, two round trips a read fewer. Nothing is
created at import time: the gateway makes its engine when it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine, create_engine, make_url
from sqlalchemy.orm import Session, declarative_base, sessionmaker
from sqlalchemy.pool import QueuePool

Base: Any = declarative_base()

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_POOL_SIZE = 24
POSTGRES_CONNECT_TIMEOUT_S = 5
POSTGRES_STATEMENT_TIMEOUT_MS = 15_000
POSTGRES_POOL_SIZE = 20
POSTGRES_POOL_OVERFLOW = 10
POSTGRES_LOCK_TIMEOUT_MS = 5_000
PING_AFTER_IDLE_S = 2.0
"""A pooled PostgreSQL connection idle longer than this is pinged before use
(SQLAlchemy's `pool_pre_ping` pings every checkout: a round trip that cost the
gateway about a twentieth of its CPU under load, when connections are back in
use within milliseconds). A connection that died within that time (a server
restart) fails its first statement instead; SQLAlchemy then sees the
disconnect and replaces every connection of the pool, and the caller's retry
(every loop and provider retries) gets a fresh one."""


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


def postgres_connect_args(
    statement_timeout_ms: int | None = POSTGRES_STATEMENT_TIMEOUT_MS,
    lock_timeout_ms: int | None = POSTGRES_LOCK_TIMEOUT_MS,
) -> dict[str, Any]:
    """libpq arguments: a connect timeout, and statement and lock timeouts (None or
    0: none, e.g. for long migrations)."""
    options = []
    if statement_timeout_ms:
        options.append(f"-c statement_timeout={int(statement_timeout_ms)}")
    if lock_timeout_ms:
        options.append(f"-c lock_timeout={int(lock_timeout_ms)}")
    args: dict[str, Any] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    if options:
        args["options"] = " ".join(options)
    return args


def make_engine(
    url: str,
    *,
    statement_timeout_ms: int | None = POSTGRES_STATEMENT_TIMEOUT_MS,
    lock_timeout_ms: int | None = POSTGRES_LOCK_TIMEOUT_MS,
) -> Engine:
    """An engine for `url`, tuned for SQLite files or for PostgreSQL.

    The timeouts apply to PostgreSQL only (SQLite waits `SQLITE_BUSY_TIMEOUT_MS`
    for locks).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            future=True,
            hide_parameters=True,
            poolclass=QueuePool,
            # As many kept connections as the gateway has threads for database
            # calls, about: opening one (and its pragmas) costs more than a turn.
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=SQLITE_POOL_SIZE,
            connect_args={
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            },
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(
        url,
        future=True,
        hide_parameters=True,
        # The gateway's and the action server's thread pools share the engine:
        # enough kept connections that returning one rarely closes it (with 10,
        # a gateway under load opened a new connection for about every third
        # checkout: 8 % of its CPU); the same 30 at most as before.
        pool_size=POSTGRES_POOL_SIZE,
        max_overflow=POSTGRES_POOL_OVERFLOW,
        connect_args=postgres_connect_args(statement_timeout_ms, lock_timeout_ms),
    )
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle(engine))
    return engine


_CHECKED_IN = "checked_in_at"


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    """When the connection came back, and with statements in transactions
    again (a `reading` block whose connection went back before it ended)."""
    record.info[_CHECKED_IN] = time.monotonic()
    if dbapi_connection is None or dbapi_connection.closed:
        return
    if dbapi_connection.autocommit:
        dbapi_connection.autocommit = False


def _ping_if_idle(engine: Engine) -> Any:
    """A checkout listener: SQLAlchemy's documented pessimistic ping (the
    dialect's own, as `pool_pre_ping` does), for idle connections only; a dead
    one raises DisconnectionError, and the pool connects anew."""

    def ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        idle = None if checked_in is None else time.monotonic() - checked_in
        if idle is not None and idle <= PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.dbapi.Error as error:
            raise exc.DisconnectionError() from error
        if not alive:
            raise exc.DisconnectionError()

    return ping


def on_postgresql(session: Session) -> bool:
    """Whether `session` runs on PostgreSQL (where statements may use its own
    SQL: `FOR UPDATE SKIP LOCKED`, `RETURNING`, data-modifying `WITH`)."""
    return bool(session.get_bind().dialect.name == "postgresql")


def make_sessionmaker(engine: Engine) -> sessionmaker:
    """Sessions bound to `engine`; objects stay readable after commit."""
    return sessionmaker(
        bind=engine, future=True, expire_on_commit=False, class_=Session
    )


@contextmanager
def reading(connection: Connection) -> Iterator[Connection]:
    """`connection` running each statement on its own until the block ends: for
    reads that change nothing and lock nothing (no `FOR UPDATE`, no
    server-side cursor). In a transaction already begun (a statement ran), or
    on a connection that commits each statement already, unchanged.

    With psycopg2, a transaction's first statement goes after a `BEGIN`, and
    the transaction of a read ends in a `ROLLBACK` (SQLAlchemy's, or the
    pool's when the connection comes back): two round trips a read fewer
    here. Under READ COMMITTED each statement sees the rows committed when it
    starts, in a transaction or not, so the reads see the same. The driver's
    own switch is used, as SQLAlchemy's ping does: the `AUTOCOMMIT`
    isolation level would send a `SET` each time the connection goes back;
    a pooled connection comes back with it off (`_note_checkin`). SQLite
    begins no transaction for a read: unchanged.
    """
    if connection.dialect.driver != "psycopg2":
        yield connection
        return
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE

    driver_connection = connection.connection.dbapi_connection
    idle = driver_connection.get_transaction_status() == TRANSACTION_STATUS_IDLE
    if driver_connection.autocommit or not idle:
        yield connection
        return
    driver_connection.autocommit = True
    try:
        yield connection
    finally:
        if not driver_connection.closed:
            driver_connection.autocommit = False


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection of `engine` whose statements run outside a transaction
    (`reading`): for reads only."""
    with engine.connect() as connection, reading(connection):
        yield connection


@contextmanager
def read_session(sessions: Callable[[], Session]) -> Iterator[Session]:
    """A session from `sessions` whose statements run outside a transaction
    (`reading`): for reads only, and the block neither commits, rolls back
    nor closes it (its connection would go back to the pool meanwhile)."""
    with sessions() as session, reading(session.connection()):
        yield session
