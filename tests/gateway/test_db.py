"""Engines: no statement parameters in errors, bounded waits on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from bot import db
from bot.db import make_engine, postgres_connect_args, utcnow
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
