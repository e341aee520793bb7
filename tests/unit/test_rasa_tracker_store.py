"""Our SQL tracker store (bot.rasa_tracker_store) against Rasa's own, on the same
database: the same session loaded, the same rows written, each event stored
once, and nothing kept in the process (two servers, an erasure)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.privacy.tracker import delete_tracker_events
from bot.rasa_tracker_store import SENDER_EVENTS, TurnSQLTrackerStore, _event_classes
from tests.postgres import BACKENDS, fresh_database, postgres_database

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = Domain.load(str(ROOT / "domain.yml"))


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path, "tracker_store") as found:
        yield found


def store(cls: type[SQLTrackerStore], url: str) -> Any:
    """A store of `cls` on the database at `url`, as Rasa makes it from endpoints."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return cls(DOMAIN, dialect="sqlite", db=parsed.database)
    return cls(DOMAIN, dialect="postgresql", host=parsed.host, port=parsed.port,
               db=parsed.database, username=parsed.username)  # fmt: skip


@pytest.fixture
def stores(url: str) -> Iterator[tuple[Any, Any]]:
    """Ours and Rasa's on the same database."""
    ours, rasas = store(TurnSQLTrackerStore, url), store(SQLTrackerStore, url)
    yield ours, rasas
    for each in (ours, rasas):
        each.engine.dispose()


class Clock:
    """Increasing event timestamps (the session rule compares them)."""

    def __init__(self) -> None:
        self.now = 1_733_390_000.0

    def __call__(self) -> float:
        self.now += 1.5
        return self.now


def session_start(clock: Clock) -> list[Event]:
    return [
        ActionExecuted("action_session_start", timestamp=clock()),
        SessionStarted(timestamp=clock()),
        ActionExecuted("action_listen", timestamp=clock()),
    ]


def turn(clock: Clock, text: str, intent: str, reply: str) -> list[Event]:
    """One turn as Rasa records it: the message, slots, the answer, listen."""
    parse = {
        "intent": {"name": intent, "confidence": 0.93},
        "entities": [],
        "intent_ranking": [{"name": intent, "confidence": 0.93},
                           {"name": "greet", "confidence": 0.04}],
        "text": text,
    }  # fmt: skip
    return [
        UserUttered(
            text,
            parse["intent"],
            [],
            parse,
            timestamp=clock(),
            input_channel="gateway",
            message_id=f"m{clock.now}",
            metadata={"idempotency_key": f"k{clock.now}"},
        ),  # fmt: skip
        ActionExecuted(
            "eligibility_form", policy="RulePolicy", confidence=1.0, timestamp=clock()
        ),  # fmt: skip
        ActiveLoop("eligibility_form", timestamp=clock()),
        SlotSet("requested_slot", "elig_age", timestamp=clock()),
        BotUttered(
            reply,
            {"buttons": None},
            {"utter_action": "utter_ask_elig_age"},
            timestamp=clock(),
        ),  # fmt: skip
        ActionExecuted(
            "action_listen", policy="RulePolicy", confidence=1.0, timestamp=clock()
        ),  # fmt: skip
    ]


def dumps(tracker: DialogueStateTracker | None) -> list[dict[str, Any]]:
    assert tracker is not None
    return [event.as_dict() for event in tracker.events]


def rows(url: str, sender: str) -> list[tuple[Any, ...]]:
    """The sender's rows, in order, without the id."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                text(
                    "SELECT type_name, timestamp, intent_name, action_name, data "
                    "FROM events WHERE sender_id = :s ORDER BY id"
                ),
                {"s": sender},
            )
            return [tuple(row) for row in found]
    finally:
        engine.dispose()


async def run_turns(store: Any, sender: str, turns: list[list[Event]]) -> None:
    """Each turn as Rasa's processor runs it: load (or create), add, save."""
    for events in turns:
        tracker = await store.retrieve(sender)
        if tracker is None:
            tracker = await store.create_tracker(sender, append_action_listen=False)
        for event in events:
            tracker.update(event)
        await store.save(tracker)


def conversation(clock: Clock, sessions: int = 2) -> list[list[Event]]:
    """Turns of `sessions` sessions, each opened by Rasa's session start."""
    turns = []
    for number in range(sessions):
        start = session_start(clock)  # timestamps in order
        opening = turn(clock, "cek syarat", "check_eligibility", f"Umur ({number})")
        turns.append(start + opening)
        turns.append(turn(clock, "23", "inform", "Kamu WNI?"))
    return turns


async def test_a_conversation_is_stored_and_loaded_as_by_rasas_store(
    stores: tuple[Any, Any], url: str
) -> None:
    ours, rasas = stores
    await run_turns(ours, "ours", conversation(Clock()))
    await run_turns(rasas, "rasas", conversation(Clock()))
    assert rows(url, "ours") == rows(url, "rasas")
    assert len(rows(url, "ours")) == 2 * (3 + 6 + 6)
    for sender in ("ours", "rasas"):
        loaded = dumps(await ours.retrieve(sender))
        assert loaded == dumps(await rasas.retrieve(sender))
        # the latest session only: from its session_started on
        assert [d["event"] for d in loaded][:2] == ["session_started", "action"]
        assert len(loaded) == 2 + 6 + 6
        assert "(1)" in json.dumps(loaded) and "(0)" not in json.dumps(loaded)


async def test_saving_a_tracker_again_stores_each_event_once(
    stores: tuple[Any, Any], url: str
) -> None:
    ours, _ = stores
    clock = Clock()
    await run_turns(ours, "again", conversation(clock, sessions=1))
    tracker = await ours.retrieve("again")
    assert tracker is not None
    for events in (session_start(clock), turn(clock, "halo", "greet", "Halo!")):
        for event in events:  # a new session on the loaded tracker, saved twice
            tracker.update(event)
        await ours.save(tracker)
    assert len(rows(url, "again")) == (3 + 6 + 6) + 3 + 6
    assert [r[4] for r in rows(url, "again")][1:] == [  # loaded from session_started
        json.dumps(event.as_dict()) for event in tracker.events
    ]


@pytest.mark.parametrize("sessions", [1, 2])
async def test_a_tracker_loaded_elsewhere_is_counted_as_rasa_counts(
    stores: tuple[Any, Any], url: str, sessions: int
) -> None:
    ours, rasas = stores
    clock = Clock()
    await run_turns(ours, "elsewhere", conversation(clock, sessions=sessions))
    tracker = await rasas.retrieve("elsewhere")  # not through our store
    assert tracker is not None  # its latest session only
    before = len(rows(url, "elsewhere"))
    for event in turn(clock, "lanjut", "inform", "Oke"):
        tracker.update(event)
    await ours.save(tracker)
    await ours.save(tracker)  # counted now: nothing again
    assert len(rows(url, "elsewhere")) == before + 6


async def test_a_new_conversation_is_created_and_saved_once(
    stores: tuple[Any, Any], url: str
) -> None:
    ours, _ = stores
    created = await ours.create_tracker("new", append_action_listen=True)
    assert [r[0] for r in rows(url, "new")] == ["action"]
    assert dumps(await ours.retrieve("new")) == dumps(created)


async def test_two_servers_sharing_the_store_each_read_the_others_turns(
    url: str,
) -> None:
    one, two = store(TurnSQLTrackerStore, url), store(TurnSQLTrackerStore, url)
    clock = Clock()
    try:
        turns = conversation(clock, sessions=1) + [
            turn(clock, f"pesan {n}", "inform", f"jawab {n}") for n in range(4)
        ]
        for number, events in enumerate(turns):  # turns alternate between servers
            await run_turns(one if number % 2 == 0 else two, "shared", [events])
        expected = [event.as_dict() for events in turns for event in events]
        assert [json.loads(r[4]) for r in rows(url, "shared")] == expected
        for server in (one, two):
            assert dumps(await server.retrieve("shared")) == expected[1:]
    finally:
        one.engine.dispose()
        two.engine.dispose()


async def test_an_erased_conversation_is_gone_at_the_next_turn(
    stores: tuple[Any, Any], url: str
) -> None:
    ours, _ = stores
    clock = Clock()
    await run_turns(ours, "erased", conversation(clock, sessions=1))
    assert await ours.retrieve("erased") is not None
    engine = create_engine(url)
    try:
        assert delete_tracker_events(engine, ["erased"]) == 15
    finally:
        engine.dispose()
    assert await ours.retrieve("erased") is None
    await run_turns(ours, "erased", [session_start(clock)])
    assert len(rows(url, "erased")) == 3


def test_each_event_class_is_the_one_rasas_lookup_finds() -> None:
    classes = _event_classes()
    assert {"user", "bot", "action", "slot", "session_started", "active_loop"} <= set(
        classes
    )
    for name, cls in classes.items():
        assert Event.resolve_by_type(name) is cls


@pytest.mark.parametrize("endpoints", ["endpoints.yml", "endpoints-scaled.yml"])
def test_rasa_makes_our_store_from_the_endpoints(
    endpoints: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in re.findall(r"\$\{(\w+)\}", (ROOT / endpoints).read_text()):
        monkeypatch.setenv(name, "5432" if name.endswith("PORT") else "x")
    config = read_endpoint_config(str(ROOT / endpoints), "tracker_store")
    assert config is not None
    config.url = None  # its type, on a SQLite file instead of the configured server
    config.kwargs = {"dialect": "sqlite", "db": str(tmp_path / "rasa.db")}
    made = TrackerStore.create(config, DOMAIN)
    try:
        assert type(made) is TurnSQLTrackerStore
    finally:
        made.engine.dispose()


def test_a_sqlite_store_keeps_its_connections_and_writes_ahead(tmp_path: Path) -> None:
    """Rasa's SQLite engine connects per call and fsyncs every commit; ours pools
    connections in WAL mode with synchronous=NORMAL, and still loads and saves."""
    ours = TurnSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"))
    with ours.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 1
    assert type(ours.engine.pool).__name__ == "QueuePool"
    tracker = DialogueStateTracker.from_events(
        "wal", [ActionExecuted("action_listen"), UserUttered("halo")], DOMAIN.slots
    )
    asyncio.run(ours.save(tracker))
    loaded = asyncio.run(ours.retrieve("wal"))
    assert loaded is not None and len(loaded.events) == 2
    with ours.session_scope() as session:  # Rasa's own ORM path, same engine
        assert session.query(ours.SQLEvent).count() == 2


async def test_the_last_saved_tracker_is_handed_out_while_the_store_agrees(
    url: str,
) -> None:
    """A server keeps the tracker it saved and hands it out again while the
    conversation's newest stored event is the one it saved: another server's
    turn or an erasure in between means a load, and what it hands out is what a
    load gives."""
    one, two = store(TurnSQLTrackerStore, url), store(TurnSQLTrackerStore, url)
    clock = Clock()
    try:
        await run_turns(one, "kept", conversation(clock, sessions=1))
        first = await one.retrieve("kept")  # the kept one: no load
        assert first is not None
        assert dumps(first) == dumps(await two.retrieve("kept"))
        for event in turn(clock, "lagi", "inform", "Oke"):
            first.update(event)
        await one.save(first)
        kept = await one.retrieve("kept")
        assert kept is first  # the same object, one turn longer
        assert dumps(kept) == dumps(await two.retrieve("kept"))
        await one.save(kept)
        await run_turns(two, "kept", [turn(clock, "dari dua", "inform", "Dua")])
        loaded = await one.retrieve("kept")  # two wrote since: loaded
        assert loaded is not first
        assert "Dua" in json.dumps(dumps(loaded))
        await one.save(loaded)  # kept again, then erased by the gateway
        engine = create_engine(url)
        try:
            assert delete_tracker_events(engine, ["kept"]) > 0
        finally:
            engine.dispose()
        assert await one.retrieve("kept") is None
    finally:
        one.engine.dispose()
        two.engine.dispose()


async def test_a_tracker_with_a_new_session_is_not_kept(url: str) -> None:
    """A load reads the latest session only; a tracker whose session started in
    this turn holds the one before too, so it is not handed out again."""
    ours = store(TurnSQLTrackerStore, url)
    clock = Clock()
    try:
        await run_turns(ours, "new", conversation(clock, sessions=1))
        tracker = await ours.retrieve("new")
        assert tracker is not None
        for event in session_start(clock):
            tracker.update(event)
        await ours.save(tracker)
        loaded = await ours.retrieve("new")
        assert loaded is not tracker and loaded is not None
        assert [d["event"] for d in dumps(loaded)][0] == "session_started"
    finally:
        ours.engine.dispose()


def _indexes(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        from sqlalchemy import inspect

        return {str(i["name"]) for i in inspect(engine).get_indexes("events")}
    finally:
        engine.dispose()


def test_a_table_rasa_made_without_it_gets_the_sender_events_index(url: str) -> None:
    """A database whose `events` table an older Rasa or store made."""
    rasas = store(SQLTrackerStore, url)
    with rasas.engine.begin() as connection:
        connection.execute(text(f"DROP INDEX IF EXISTS {SENDER_EVENTS.name}"))
    rasas.engine.dispose()
    assert str(SENDER_EVENTS.name) not in _indexes(url)

    for _ in range(2):  # a second server finds it made
        store(TurnSQLTrackerStore, url).engine.dispose()
        assert str(SENDER_EVENTS.name) in _indexes(url)


def test_a_new_conversation_finds_its_newest_event_by_the_sender_index() -> None:
    """PostgreSQL's generic plan for "the newest event of a sender", on an
    analyzed table: by (sender_id, id), not the primary key read backwards
    (a new sender's lookup then read every row)."""
    with postgres_database("tracker_plan") as url:
        ours = store(TurnSQLTrackerStore, url)
        try:
            with ours.engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO events (sender_id, type_name, timestamp, data) "
                        "SELECT 'sender-' || (g % 400), 'user', g, '{}' "
                        "FROM generate_series(1, 60000) g"
                    )
                )
                connection.execute(text("ANALYZE events"))
            with ours.engine.connect() as connection:
                connection.execute(text("SET plan_cache_mode = force_generic_plan"))
                connection.execute(
                    text(
                        "PREPARE newest(text) AS "
                        "SELECT max(id) FROM events WHERE sender_id = $1"
                    )
                )
                plan = "\n".join(
                    row[0]
                    for row in connection.execute(
                        text("EXPLAIN EXECUTE newest('a-new-person')")
                    )
                )
        finally:
            ours.engine.dispose()
    assert str(SENDER_EVENTS.name) in plan, plan
