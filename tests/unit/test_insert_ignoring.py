"""`bot.insert_ignoring`: INSERT ... ON CONFLICT DO NOTHING, compiled once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, UniqueConstraint
from sqlalchemy.engine import Engine
from sqlalchemy.engine.default import CACHE_HIT
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.insert_ignoring import insert_ignoring, insert_ignoring_conflict
from tests.postgres import BACKENDS, engine_with_tables

metadata = MetaData()
people = Table(
    "people",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("nik", String(16), nullable=False),
    Column("email", String(64), nullable=False),
    UniqueConstraint("nik"),
    UniqueConstraint("email"),
)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database of each backend with the `people` table."""
    with engine_with_tables(
        request.param, tmp_path, metadata, "insert_ignoring"
    ) as made:
        yield made


def test_a_taken_key_is_skipped_and_the_sql_is_compiled_once(engine: Engine) -> None:
    statement = insert_ignoring(people)
    with engine.begin() as connection:
        first = connection.execute(statement, {"nik": "1", "email": "a"})
        same_nik = connection.execute(statement, {"nik": "1", "email": "b"})
        same_email = connection.execute(statement, {"nik": "2", "email": "a"})
        other = connection.execute(statement, {"nik": "3", "email": "c"})
    assert [first.rowcount, same_nik.rowcount, same_email.rowcount] == [1, 0, 0]
    assert other.rowcount == 1  # the skipped rows did not abort it
    assert first.context.cache_hit is not CACHE_HIT  # compiled here
    assert all(r.context.cache_hit is CACHE_HIT for r in (same_nik, other))
    with engine.connect() as connection:
        rows = connection.execute(people.select().order_by(people.c.id))
        assert [(r.nik, r.email) for r in rows] == [("1", "a"), ("3", "c")]


def test_the_sql_is_the_insert_with_the_clause() -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    for dialect in (postgresql.dialect(), sqlite.dialect()):
        sql = str(insert_ignoring(people).compile(dialect=dialect))
        assert sql.startswith("INSERT INTO people")
        assert sql.endswith(" ON CONFLICT DO NOTHING")


def test_with_a_target_only_that_key_is_skipped_and_the_sql_is_cached(
    engine: Engine,
) -> None:
    with Session(engine) as session:
        assert insert_ignoring_conflict(
            session, people, {"nik": "1", "email": "a"}, ["nik"]
        )
        again, once_more = (
            session.execute(insert_ignoring(people, ("nik",)), {"nik": "1", "email": e})
            for e in ("b", "c")
        )
        assert again.rowcount == 0 and once_more.rowcount == 0
        assert once_more.context.cache_hit is CACHE_HIT
        with pytest.raises(IntegrityError):  # another key's clash is an error
            insert_ignoring_conflict(
                session, people, {"nik": "2", "email": "a"}, ["nik"]
            )


def test_the_helper_runs_past_sqlalchemys_per_call_work(engine: Engine) -> None:
    """`insert_ignoring_conflict` runs the statement as `bot.direct_sql` does."""
    from bot.insert_ignoring import _direct

    for target in ((), ("nik",)):
        assert _direct(people, target).plan(engine.dialect, {"nik": "1", "email": "a"})


def test_the_target_is_rendered_and_part_of_the_cache_key() -> None:
    from sqlalchemy.dialects import postgresql

    sql = str(insert_ignoring(people, ("nik",)).compile(dialect=postgresql.dialect()))
    assert sql.endswith(" ON CONFLICT (nik) DO NOTHING")
    assert insert_ignoring(people, ("nik",)) is insert_ignoring(people, ("nik",))
    none, nik, email = (
        insert_ignoring(people, target)._generate_cache_key()
        for target in ((), ("nik",), ("email",))
    )
    assert none != nik and nik != email and none != email
