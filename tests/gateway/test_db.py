"""Engines: no statement parameters in errors, bounded waits on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

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
