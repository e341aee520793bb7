"""Migration 0300 builds exactly the models' ticket tables (CHECKs and the partial
index included), gives existing replies the author "bot", and downgrades cleanly,
on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from bot.db import Base, make_engine
from tests.handoff.conftest import BACKENDS, fresh_database
from tests.registry.conftest import alembic_config, upgrade

TABLES = ("ticket", "ticket_note")


def _index_sql(engine: Engine, table: str) -> list[tuple[str, str]]:
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


def _describe(engine: Engine) -> dict[str, Any]:
    inspector = inspect(engine)
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"])
                for c in inspector.get_columns(table)
            ],
            "fks": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "checks": sorted(
                (c["name"], " ".join(c["sqltext"].split()))
                for c in inspector.get_check_constraints(table)
            ),
            "indexes": _index_sql(engine, table),
        }
        for table in TABLES
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migration_builds_the_models_tables(backend: str, tmp_path: Path) -> None:
    with (
        fresh_database(backend, tmp_path) as migrated,
        fresh_database(backend, tmp_path) as created,
    ):
        upgrade(migrated)
        by_migration, by_models = make_engine(migrated), make_engine(created)
        try:
            needed = ("conversation", "applicant", *TABLES)  # and what they refer to
            Base.metadata.create_all(
                by_models, tables=[Base.metadata.tables[t] for t in needed]
            )
            described = _describe(by_migration)
            assert described == _describe(by_models)
            assert any(
                "WHERE" in sql and "assigned" in sql
                for name, sql in described["ticket"]["indexes"]
                if name == "uq_ticket_one_active"
            )
            assert {name for name, _ in described["ticket"]["checks"]} >= {
                "ck_ticket_status",
                "ck_ticket_reason",
                "ck_ticket_assigned",
            }
        finally:
            by_migration.dispose()
            by_models.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_existing_replies_become_the_bots_and_the_downgrade_keeps_them(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path) as url:
        config = alembic_config(url)
        command.upgrade(config, "0200")
        engine = make_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO conversation (id, channel, address, pseudonym,"
                        " simulated, opted_out, state, created_at, updated_at)"
                        " VALUES (1, 'sms', '+62811', 'p', false, false, '{}',"
                        " '2026-11-30 03:00:00', '2026-11-30 03:00:00')"
                    )
                )
                connection.execute(
                    text(
                        "INSERT INTO outbox_message (id, conversation_id, seq, body,"
                        " ignore_opt_out, status, attempts, next_attempt_at,"
                        " created_at, updated_at) VALUES (1, 1, 0, '{}', false,"
                        " 'sent', 1, '2026-11-30 03:00:00', '2026-11-30 03:00:00',"
                        " '2026-11-30 03:00:00')"
                    )
                )
            command.upgrade(config, "0300")
            with engine.connect() as connection:
                row = connection.execute(
                    text("SELECT author, agent_id FROM outbox_message")
                ).one()
            assert tuple(row) == ("bot", None)
            command.downgrade(config, "0200")
            names = set(inspect(engine).get_table_names())
            assert names.isdisjoint(TABLES)
            columns = {c["name"] for c in inspect(engine).get_columns("outbox_message")}
            assert not {"author", "agent_id"} & columns
            with engine.connect() as connection:
                count = connection.execute(
                    text("SELECT count(*) FROM outbox_message")
                ).scalar()
            assert count == 1
        finally:
            engine.dispose()
