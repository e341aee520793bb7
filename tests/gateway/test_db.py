"""Engines: no statement parameters in errors, bounded waits on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS
from sqlalchemy import create_engine, event, insert, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from bot import db
from bot.db import (
    make_engine,
    make_sessionmaker,
    postgres_connect_args,
    read_session,
    reading,
    utcnow,
)
from bot.messages.models import Conversation
from bot.schema import upgrade

PHONE = "+6281234567890"


def _duplicate_conversation_error(url: str) -> str:
    upgrade(url)
    engine = make_engine(url)
    now = utcnow()
    row = {
        "channel": "sms",
        "address": PHONE,
        "pseudonym": "p",
        "simulated": False,
        "opted_out": False,
        "state": {},
        "created_at": now,
        "updated_at": now,
    }
    try:
        with engine.begin() as connection:
            connection.execute(insert(Conversation.__table__).values(**row))
        with pytest.raises(IntegrityError) as caught, engine.begin() as connection:
            connection.execute(insert(Conversation.__table__).values(**row))
    finally:
        engine.dispose()
    return str(caught.value)


def test_sqlite_errors_hide_the_parameters(tmp_path: Path) -> None:
    message = _duplicate_conversation_error(f"sqlite:///{tmp_path}/db.sqlite")
    assert "parameters hidden" in message
    assert PHONE not in message


def test_postgres_errors_hide_the_parameters(postgres_url: str) -> None:
    message = _duplicate_conversation_error(postgres_url)
    assert "parameters hidden" in message
    # PostgreSQL's own DETAIL may still quote the values ("Key (...)=(...)"): such
    # messages are never logged or stored, only the error's type and place.


def test_postgres_sessions_have_timeouts(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            statement = connection.execute(text("SHOW statement_timeout")).scalar()
            lock = connection.execute(text("SHOW lock_timeout")).scalar()
    finally:
        engine.dispose()
    assert (statement, lock) == ("15s", "5s")


def test_postgres_connect_arguments() -> None:
    assert postgres_connect_args() == {
        "connect_timeout": 5,
        "options": "-c statement_timeout=15000 -c lock_timeout=5000",
    }
    assert postgres_connect_args(None, None) == {"connect_timeout": 5}


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(postgres_url: str, pid: int) -> None:
    admin = create_engine(postgres_url, future=True, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def test_a_postgres_connection_that_died_while_idle_is_replaced_before_use(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle longer than `PING_AFTER_IDLE_S` (0 here): pinged at checkout, and
    a dead one is replaced without the caller seeing an error."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    engine = make_engine(postgres_url)
    try:
        first = _backend_pid(engine)
        _terminate(postgres_url, first)
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()


def test_a_postgres_connection_back_in_use_at_once_is_not_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within `PING_AFTER_IDLE_S` no ping: a connection that died meanwhile fails
    its first statement, and the pool replaces every connection for the next."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)
    engine = make_engine(postgres_url)
    statements: list[str] = []
    event.listen(
        engine, "before_cursor_execute", lambda *args: statements.append(args[2])
    )
    try:
        first = _backend_pid(engine)
        assert _backend_pid(engine) == first
        assert statements == ["SELECT pg_backend_pid()"] * 2  # no SELECT 1
        _terminate(postgres_url, first)
        with pytest.raises(OperationalError):
            _backend_pid(engine)
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()


def _transaction_status(connection: Connection) -> int:
    return int(connection.connection.dbapi_connection.get_transaction_status())


def test_a_postgres_read_runs_outside_a_transaction(postgres_url: str) -> None:
    """No BEGIN before it and no ROLLBACK after: the driver holds no transaction
    open after the statement; the connection goes back to the pool as before."""
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            assert _transaction_status(connection) == TRANSACTION_STATUS_INTRANS
        with engine.connect() as connection, reading(connection):
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
            assert _transaction_status(connection) == TRANSACTION_STATUS_IDLE
        with engine.connect() as connection:
            assert connection.connection.dbapi_connection.autocommit is False
    finally:
        engine.dispose()


def test_after_a_read_writes_are_transactions_again(postgres_url: str) -> None:
    """The same pooled connection, once read on (a read that failed too), still
    rolls a failed write back whole."""
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    try:
        with read_session(sessions) as session:
            session.execute(text("SELECT count(*) FROM conversation"))
        with pytest.raises(DataError), read_session(sessions) as session:
            session.execute(text("SELECT 1 / 0"))
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text(CONVERSATION_ROW), {"address": PHONE})
            connection.execute(text(CONVERSATION_ROW), {"address": PHONE})
        with engine.connect() as connection:
            kept = connection.execute(text("SELECT count(*) FROM conversation"))
            assert kept.scalar_one() == 0
    finally:
        engine.dispose()


CONVERSATION_ROW = (
    "INSERT INTO conversation (channel, address, pseudonym, simulated, opted_out,"
    " state, created_at, updated_at) VALUES ('sms', :address, 'p', false, false,"
    " '{}', now(), now())"
)


def test_a_read_whose_connection_died_fails_as_a_disconnect(postgres_url: str) -> None:
    """The read sees the driver's own error, and the pool a fresh connection."""
    engine = make_engine(postgres_url)
    try:
        with (
            pytest.raises(OperationalError),
            engine.connect() as connection,
            reading(connection),
        ):
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
            _terminate(postgres_url, int(pid))
            connection.execute(text("SELECT 1"))
        assert _backend_pid(engine) != pid
    finally:
        engine.dispose()


def test_a_sqlite_read_session_reads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite"
    upgrade(url)
    engine = make_engine(url)
    try:
        with read_session(make_sessionmaker(engine)) as session:
            assert session.execute(select(Conversation.id)).all() == []
    finally:
        engine.dispose()


def test_a_read_in_a_transaction_already_begun_is_part_of_it(
    postgres_url: str,
) -> None:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            connection.execute(text(CONVERSATION_ROW), {"address": PHONE})
            with reading(connection):
                seen = connection.execute(text("SELECT count(*) FROM conversation"))
                assert seen.scalar_one() == 1  # its own transaction's row
            assert _transaction_status(connection) == TRANSACTION_STATUS_INTRANS
            connection.rollback()
            kept = connection.execute(text("SELECT count(*) FROM conversation"))
            assert kept.scalar_one() == 0
    finally:
        engine.dispose()


def test_a_connection_comes_back_to_the_pool_with_transactions(
    postgres_url: str,
) -> None:
    """Even when a read session's block ended its session early: the next
    to take the connection gets statements in transactions."""
    engine = make_engine(postgres_url)
    try:
        with read_session(make_sessionmaker(engine)) as session:
            session.execute(text("SELECT 1"))
            session.commit()  # what a read session's block must not do
            with engine.connect() as connection:  # the same pooled connection
                assert connection.connection.dbapi_connection.autocommit is False
    finally:
        engine.dispose()


def test_a_connection_that_commits_each_statement_is_left_so(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url, future=True, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            with reading(connection):
                connection.execute(text("SELECT 1"))
            assert connection.connection.dbapi_connection.autocommit is True
    finally:
        engine.dispose()
