"""Mask the personal data Rasa's tracker store already holds.

Since the gateway hands Rasa tokens (`bot.privacy.vault`), no new event carries
a NIK, KK, phone, birth date or e-mail; events stored before that still may, in
the user's text, entities, slots, bot replies and metadata. This rewrites every
string in the `events` table's JSON with each span the detector finds masked
(as the console shows it); tokens and ids are left alone, so conversations in
progress go on. Run it with Rasa stopped (`make run` does, before Rasa
starts): `python -m bot.privacy.tracker_scrub [--endpoints endpoints.yml]` or
`--url sqlite:///var/rasa_tracker.db`. Running it again changes nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, Engine, make_url

from bot.privacy.detect import Span, mask_personal_data, replace_personal_data
from bot.privacy.vault import TOKEN_PATTERN

log = logging.getLogger(__name__)

BATCH = 500
SQL_SUBCLASS = "bot.rasa_tracker_store.TurnSQLTrackerStore"
"""Our subclass of Rasa's SQL tracker store (same table), as endpoints.yml names it."""
# Identifiers and times, never typed by a person (a long hex id may hold digits).
_NOT_TEXT_SUFFIXES = ("_id", "timestamp")


def _mask(span: Span, typed: str) -> str:
    if TOKEN_PATTERN.fullmatch(typed):
        return typed
    return mask_personal_data(typed)


def scrub_data(value: Any, key: str = "") -> Any:
    """`value` (decoded event JSON) with personal data masked in every string."""
    if isinstance(value, str):
        if key.endswith(_NOT_TEXT_SUFFIXES):
            return value
        return replace_personal_data(value, _mask)
    if isinstance(value, Mapping):
        return {name: scrub_data(item, str(name)) for name, item in value.items()}
    if isinstance(value, list):
        return [scrub_data(item, key) for item in value]
    return value


def scrub_events(engine: Engine) -> int:
    """Mask personal data in every row of the `events` table; rows changed."""
    if "events" not in inspect(engine).get_table_names():
        return 0
    changed = 0
    last = 0
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                text(
                    "SELECT id, data FROM events WHERE id > :last ORDER BY id LIMIT :n"
                ),
                {"last": last, "n": BATCH},
            ).all()
            for row in rows:
                scrubbed = _scrub_row(row.data)
                if scrubbed is not None:
                    connection.execute(
                        text("UPDATE events SET data = :data WHERE id = :id"),
                        {"data": scrubbed, "id": row.id},
                    )
                    changed += 1
        if len(rows) < BATCH:
            return changed
        last = rows[-1].id


def _scrub_row(data: str | None) -> str | None:
    """The row's new JSON, or None when nothing in it changes."""
    if not data:
        return None
    try:
        decoded = json.loads(data)
    except ValueError:
        scrubbed_text = replace_personal_data(data, _mask)
        return scrubbed_text if scrubbed_text != data else None
    scrubbed = scrub_data(decoded)
    return json.dumps(scrubbed) if scrubbed != decoded else None


def tracker_url(endpoints: Path) -> URL | None:
    """The SQL tracker store's URL from Rasa's endpoints file (None: not SQL)."""
    config = yaml.safe_load(endpoints.read_text(encoding="utf-8")) or {}
    store = config.get("tracker_store") or {}
    kind = str(store.get("type", ""))
    if kind.upper() != "SQL" and kind != SQL_SUBCLASS:
        return None
    dialect = str(store.get("dialect", "sqlite"))
    if dialect == "sqlite":
        return URL.create("sqlite", database=str(store.get("db", "rasa.db")))
    return URL.create(
        drivername=dialect,
        username=store.get("username"),
        password=store.get("password"),
        host=store.get("url"),
        port=store.get("port"),
        database=store.get("db", "rasa"),
        query=store.get("query") or {},
    )


def main(argv: list[str] | None = None) -> int:
    """Scrub the tracker store named by `--url` or by the endpoints file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", default="endpoints.yml", type=Path)
    parser.add_argument("--url", help="the tracker store's database URL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    url = args.url or tracker_url(args.endpoints)
    if url is None:
        log.info("no SQL tracker store in %s: nothing to scrub", args.endpoints)
        return 0
    database = make_url(url).database
    if make_url(url).get_backend_name() == "sqlite" and not (
        database and Path(database).exists()
    ):
        log.info("no tracker store yet: nothing to scrub")
        return 0
    engine = create_engine(url)
    try:
        changed = scrub_events(engine)
    finally:
        engine.dispose()
    log.info("tracker store scrubbed: %d events changed", changed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
