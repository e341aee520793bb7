"""The scrub of Rasa's tracker store: personal data already in its events is
masked, tokens and ids are kept, and a second run changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.privacy.tracker_scrub import SQL_SUBCLASS, main, scrub_events, tracker_url

NIK = "3174011508900001"
TOKEN = "0000123456789012"
EVENTS = [
    {
        "event": "user",
        "text": f"nik saya {NIK[:8]} {NIK[8:]}",
        "parse_data": {
            "entities": [{"entity": "nik", "value": NIK}],
            "text": f"nik saya {NIK}",
        },
        "message_id": "m1357913579135791",
        "metadata": {"event": {"type": "contact", "phone": "+6281234567890"}},
    },
    {"event": "slot", "name": "reg_birth_date", "value": "1990-08-15"},
    {"event": "slot", "name": "reg_email", "value": "budi.santoso@gmail.com"},
    {"event": "bot", "text": "Apakah 15-08-1990 sudah benar?"},
    {"event": "slot", "name": "reg_kk", "value": TOKEN},
    {"event": "action", "name": "action_listen", "timestamp": 1733390000.123},
]


def tracker_db(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, "
                "type_name TEXT, timestamp FLOAT, intent_name TEXT, "
                "action_name TEXT, data TEXT)"
            )
        )
        for event in EVENTS:
            connection.execute(
                text(
                    "INSERT INTO events (sender_id, type_name, data) "
                    "VALUES (:s, :t, :d)"
                ),
                {"s": "abc", "t": event["event"], "d": json.dumps(event)},
            )
    engine.dispose()
    return url


def stored(url: str) -> list[dict]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT data FROM events ORDER BY id")).all()
    engine.dispose()
    return [json.loads(row.data) for row in rows]


def test_personal_data_in_stored_events_is_masked(tmp_path: Path) -> None:
    url = tracker_db(tmp_path / "rasa.db")
    engine = create_engine(url)
    assert scrub_events(engine) == 4
    assert scrub_events(engine) == 0
    engine.dispose()
    user, born, email, bot, kk, action = stored(url)
    dump = json.dumps([user, born, email, bot])
    for clear in (
        NIK,
        "15080001",
        "1990-08-15",
        "15-08-1990",
        "budi.santoso",
        "34567890",
    ):
        assert clear not in dump.replace(" ", ""), clear
    assert user["text"] == "nik saya 3174********0001"
    assert user["parse_data"]["entities"][0]["value"] == "3174********0001"
    assert user["metadata"]["event"]["phone"] == "+62812*****890"
    assert user["message_id"] == "m1357913579135791"
    assert born["value"] == "**-**-****" and email["value"] == "bu***@gmail.com"
    assert bot["text"] == "Apakah **-**-**** sudah benar?"
    assert kk["value"] == TOKEN and action == EVENTS[-1]


@pytest.mark.parametrize("kind", ["SQL", SQL_SUBCLASS])
def test_the_command_reads_the_tracker_store_from_the_endpoints(
    tmp_path: Path, kind: str
) -> None:
    url = tracker_db(tmp_path / "rasa.db")
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        f"tracker_store:\n  type: {kind}\n"
        f'  dialect: sqlite\n  db: "{tmp_path}/rasa.db"\n'
    )
    assert str(tracker_url(endpoints)) == url
    assert main(["--endpoints", str(endpoints)]) == 0
    assert stored(url)[0]["text"] == "nik saya 3174********0001"
    missing = tmp_path / "none.yml"
    missing.write_text('tracker_store:\n  type: SQL\n  db: "nowhere/rasa.db"\n')
    assert main(["--endpoints", str(missing)]) == 0
    assert not Path("nowhere/rasa.db").exists()


def test_the_repository_endpoints_name_a_store_the_scrub_reads() -> None:
    """`make run` scrubs var/rasa_tracker.db before Rasa starts: the type in
    endpoints.yml must be one the scrub knows."""
    root = Path(__file__).resolve().parents[2]
    assert str(tracker_url(root / "endpoints.yml")) == "sqlite:///var/rasa_tracker.db"
