"""`bot.prepared_statements`: a `DirectStatement` is prepared once on each
PostgreSQL connection and then executed by name, with the same results; one
PostgreSQL cannot prepare runs as text without harming the transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from bot.direct_sql import DirectStatement
from bot.prepared_statements import prepared_form
from tests.postgres import engine_with_tables

metadata = MetaData()
notes = Table(
    "prepared_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(32), nullable=False),
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh PostgreSQL database with the `prepared_notes` table."""
    with engine_with_tables("postgresql", tmp_path, metadata, "prepared") as made:
        yield made


def _prepared(session: Session) -> list[str]:
    """The statements prepared on the session's connection."""
    return list(
        session.execute(
            text("SELECT statement FROM pg_prepared_statements ORDER BY prepare_time")
        ).scalars()
    )


def test_the_sql_is_numbered_once_per_name_and_percent_signs_unescaped() -> None:
    form = prepared_form(
        "SELECT a FROM t WHERE x = %(x)s AND y = %(y_1)s OR z = %(x)s AND w LIKE 'a%%'"
    )
    name = form.name
    assert form.prepare_sql == (
        f"PREPARE {name} AS SELECT a FROM t WHERE x = $1 AND y = $2 OR z = $1 "
        "AND w LIKE 'a%'"
    )
    assert form.execute_sql == f"EXECUTE {name}(%(x)s, %(y_1)s)"
    bare = prepared_form("SELECT 1")
    assert bare.execute_sql == f"EXECUTE {bare.name}"
    assert bare.name != name


def test_a_statement_is_prepared_once_per_connection_and_gives_the_same_rows(
    engine: Engine,
) -> None:
    by_name = DirectStatement(
        select(notes.c.id, notes.c.name).where(notes.c.name == bindparam("name"))
    )
    write = DirectStatement(insert(notes), values_from_parameters=True)
    with Session(engine) as session:
        for name in ("a", "b", "a"):
            write.execute(session, {"name": name})
        rows = [tuple(r) for r in by_name.execute(session, {"name": "a"})]
        assert rows == [(1, "a"), (3, "a")]
        assert rows == [
            tuple(r) for r in session.execute(by_name.statement, {"name": "a"})
        ]
        prepared = _prepared(session)
        assert len(prepared) == 2
        assert prepared[1].startswith("PREPARE direct_sql_")
        assert "WHERE prepared_notes.name = $1" in prepared[1]
        session.rollback()  # a prepared statement outlives the transaction
        assert by_name.execute(session, {"name": "a"}).all() == []
        assert len(_prepared(session)) == 2


def test_a_statement_postgresql_cannot_prepare_runs_as_text_in_the_same_transaction(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """`$1 IS NULL`: PostgreSQL cannot tell the parameter's type. The failed
    PREPARE is undone to its savepoint; what the transaction wrote stays."""
    untyped = DirectStatement(
        select(literal_column("1").label("one")).where(
            bindparam("maybe", type_=String()).is_(None)
        )
    )
    write = DirectStatement(insert(notes), values_from_parameters=True)
    with Session(engine) as session, caplog.at_level(logging.WARNING):
        write.execute(session, {"name": "kept"})
        assert untyped.execute(session, {"maybe": None}).scalars() == [1]
        assert untyped.execute(session, {"maybe": "x"}).scalars() == []
        session.commit()
    plan = untyped.plan(engine.dialect, {})
    assert plan is not None and plan.prepared is not None
    assert plan.prepared.usable is False
    assert "not prepared" in caplog.text
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(notes)).scalar() == 1
        assert untyped.execute(session, {"maybe": None}).scalars() == [1]


def test_a_new_connection_prepares_again(engine: Engine) -> None:
    """A connection the server closed is replaced; the new one has nothing
    prepared, and the statement is prepared on it at its first run."""
    count = DirectStatement(
        select(func.count()).where(notes.c.name == bindparam("name"))
    )
    with Session(engine) as session:
        assert count.execute(session, {"name": "x"}).scalar() == 0
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
        session.commit()
    admin = create_engine(engine.url, future=True)
    with admin.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.commit()
    admin.dispose()
    with Session(engine) as session, pytest.raises(OperationalError):
        count.execute(session, {"name": "x"})  # the dead connection fails once
    with Session(engine) as session:
        assert count.execute(session, {"name": "x"}).scalar() == 0
        assert len(_prepared(session)) == 1


def test_an_autocommit_connection_needs_no_savepoint(engine: Engine) -> None:
    untyped = DirectStatement(
        select(literal_column("2").label("two")).where(
            bindparam("maybe", type_=String()).is_(None)
        )
    )
    typed = DirectStatement(select(notes.c.id).where(notes.c.id == bindparam("id")))
    autocommit: Any = engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        assert untyped.execute(connection, {"maybe": None}).scalars() == [2]
        assert typed.execute(connection, {"id": 1}).all() == []
        statements = connection.execute(
            text("SELECT statement FROM pg_prepared_statements")
        ).scalars()
        assert [s.split(" AS ")[0][:19] for s in statements] == ["PREPARE direct_sql_"]


def test_a_plan_gone_stale_after_a_migration_fails_once_then_is_prepared_again(
    engine: Engine,
) -> None:
    """A column's type changed under a prepared statement: PostgreSQL refuses
    the statement ("cached plan must not change result type"); that call
    fails, the same connection then prepares again and answers."""
    by_id = DirectStatement(select(notes.c.name).where(notes.c.id == bindparam("id")))
    with Session(engine) as session:
        session.execute(insert(notes), {"name": "n"})
        assert by_id.execute(session, {"id": 1}).scalar() == "n"
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
        session.commit()
    admin = create_engine(engine.url, future=True)
    with admin.begin() as other:
        other.execute(text("ALTER TABLE prepared_notes ALTER COLUMN name TYPE text"))
    admin.dispose()
    with Session(engine) as session:
        with pytest.raises(DBAPIError, match="cached plan"):
            by_id.execute(session, {"id": 1})
        session.rollback()
        assert by_id.execute(session, {"id": 1}).scalar() == "n"
        assert session.execute(text("SELECT pg_backend_pid()")).scalar() == pid
        assert len(_prepared(session)) == 1  # the others were dropped with it
