"""Alembic environment: the database from DATABASE_URL (or the caller), our metadata.

Called programmatically by bot/schema.py (which passes the URL and keeps the
application's logging) or by the `alembic` command. On PostgreSQL an advisory lock
serialises gateways that start at the same time.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import text

import bot.console.models  # noqa: F401  (registers the console tables)
import bot.effects.models  # noqa: F401  (registers the effect ledger)
import bot.handoff.models  # noqa: F401  (registers the ticket tables)
import bot.leases  # noqa: F401  (registers the gateway processes' heartbeats)
import bot.messages.models  # noqa: F401  (registers the message store tables)
import bot.notify.models  # noqa: F401  (registers the mail queue)
import bot.privacy.models  # noqa: F401  (registers the privacy tables and the token vault)
import bot.registry.models  # noqa: F401  (registers the registry tables)
import bot.registry.participants  # noqa: F401  (lifetime participants)
import bot.selection.models  # noqa: F401  (registers the batch runs and notices)
import bot.verification.models  # noqa: F401  (registers the population table)
from bot.db import Base, make_engine
from bot.settings import load_settings

MIGRATION_LOCK_ID = 7_351_022_001

config = context.config
if config.attributes.get("configure_logger", True) and config.config_file_name:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else load_settings().database_url


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations against the database."""
    # Schema changes may take longer than the request-path statement timeout.
    engine = make_engine(_url(), statement_timeout_ms=None, lock_timeout_ms=None)
    postgres = engine.dialect.name == "postgresql"
    try:
        with engine.connect() as connection:
            if postgres:
                connection.execute(
                    text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID}
                )
                connection.commit()
            try:
                context.configure(
                    connection=connection,
                    target_metadata=target_metadata,
                    render_as_batch=engine.dialect.name == "sqlite",
                )
                with context.begin_transaction():
                    context.run_migrations()
                connection.commit()
            finally:
                if postgres:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:id)"),
                        {"id": MIGRATION_LOCK_ID},
                    )
                    connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
