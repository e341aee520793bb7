"""The migration builds exactly the models' registry schema, on both databases.

`compare_metadata` is what `alembic check` runs; it ignores CHECK constraints and
the WHERE of partial indexes, so the reflected schema of a migrated database is
also compared with one made by `metadata.create_all` from the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from bot.db import Base, make_engine
from tests.registry.conftest import (
    BACKENDS,
    REGISTRY_TABLES,
    alembic_config,
    fresh_database,
    upgrade,
)


def _registry_only(
    obj: Any, name: Any, type_: str, reflected: bool, other: Any
) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return table is None or table.name in REGISTRY_TABLES


def _describe(engine: Engine) -> dict[str, Any]:
    """Everything about the registry tables that the database knows."""
    inspector = inspect(engine)
    schema: dict[str, Any] = {}
    for table in REGISTRY_TABLES:
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"])
                for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "checks": sorted(
                (c["name"], " ".join(c["sqltext"].split()))
                for c in inspector.get_check_constraints(table)
            ),
            "indexes": _index_sql(engine, table),
        }
    return schema


def _index_sql(engine: Engine, table: str) -> list[tuple[str, str]]:
    """Each index's full definition (columns, uniqueness, partial WHERE)."""
    if engine.dialect.name == "sqlite":
        query = (
            "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
            " AND tbl_name = :table AND sql IS NOT NULL"
        )
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :table"
    with engine.connect() as connection:
        rows = connection.execute(text(query), {"table": table}).all()
    return sorted((name, " ".join(sql.split())) for name, sql in rows)


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_builds_the_models_schema(backend: str, tmp_path: Path) -> None:
    with (
        fresh_database(backend, tmp_path) as migrated,
        fresh_database(backend, tmp_path) as created,
    ):
        upgrade(migrated)
        upgrade(migrated)  # a second start finds nothing to do
        by_migration = make_engine(migrated)
        by_models = make_engine(created)
        try:
            with by_migration.connect() as connection:
                context = MigrationContext.configure(
                    connection, opts={"include_object": _registry_only}
                )
                assert compare_metadata(context, Base.metadata) == []
            tables = [Base.metadata.tables[name] for name in REGISTRY_TABLES]
            Base.metadata.create_all(by_models, tables=tables)
            assert _describe(by_migration) == _describe(by_models)
            described = _describe(by_migration)
            assert ("uq_applicant_nik", ("nik",)) in described["applicant"]["unique"]
            assert any(
                "WHERE" in sql and "pending" in sql
                for _, sql in described["batch_membership"]["indexes"]
            )
            assert any(
                name == "ck_batch_joined_le_quota"
                for name, _ in described["batch"]["checks"]
            )
        finally:
            by_migration.dispose()
            by_models.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_downgrade_drops_the_registry_and_keeps_the_gateway(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path) as url:
        upgrade(url)
        command.downgrade(alembic_config(url), "0100-1")  # just below the registry
        engine = make_engine(url)
        try:
            names = set(inspect(engine).get_table_names())
            assert names.isdisjoint(REGISTRY_TABLES)
            assert "conversation" in names
        finally:
            engine.dispose()
        upgrade(url)
        engine = make_engine(url)
        try:
            assert set(REGISTRY_TABLES) <= set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
