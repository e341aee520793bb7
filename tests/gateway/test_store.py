"""Migrations: `upgrade head` builds exactly the models' schema, on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.db import Base, make_engine
from bot.schema import alembic_config, upgrade


def _check(url: str) -> None:
    upgrade(url)
    upgrade(url)  # a second start finds nothing to do
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert compare_metadata(context, Base.metadata) == []
            assert context.get_current_revision() is not None
        command.downgrade(alembic_config(url), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sub/dir/prakerja.db"
    _check(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        mode = connection.execute(text("PRAGMA journal_mode")).scalar()
        keys = connection.execute(text("PRAGMA foreign_keys")).scalar()
    engine.dispose()
    assert (mode, keys) == ("wal", 1)


def test_postgres_schema_matches_the_models(postgres_url: str) -> None:
    _check(postgres_url)
