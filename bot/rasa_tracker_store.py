"""Inside Rasa: its SQL tracker store, the same table and rows, in fewer steps a turn.

`endpoints.yml` and `endpoints-scaled.yml` name this class as Rasa's tracker store
(`type: bot.rasa_tracker_store.TurnSQLTrackerStore`, Rasa's way to plug in a
tracker store). It is Rasa's `SQLTrackerStore`: the same `events` table, the
same rows, the same rule for the current session (the events from the latest
`session_started` on, ordered by id), checked against the database on every
turn, so several Rasa servers sharing the store (scaled mode, under Rasa's
`RedisLockStore`) each read what the others wrote, and a conversation erased by
the gateway (`bot.privacy.tracker`) is gone for Rasa at once. The privacy scrub
and erasure work on it unchanged (same table).

What it does differently, measured on the whole path (docs/benchmarks.md, issue
13, "Rasa's CPU per turn: the tracker store": load and save together 6.5 ms of
CPU per message before, 2.2 after, on PostgreSQL):

- **Load.** Rasa's `retrieve` spent two thirds of its time finding each
  event's class: `Event.from_parameters` walks every subclass of `Event`
  (`all_subclasses`, with an `inspect.isabstract` per class) for every event of
  the session. Here the classes are looked up in a table built once, the same
  class Rasa's walk finds first for each type name (`_event_classes`); the rest
  of Rasa's deserialisation and its replay into a `DialogueStateTracker` are
  Rasa's own. The query is the same SQL as Rasa's, as one prepared Core
  statement selecting only `data`, instead of an ORM query built and its rows
  made ORM objects on every turn. The statements of every turn (this load,
  the check of the newest event, a turn's one new event) run on the driver's
  cursor (`bot.direct_sql`).
- **Save.** Rasa's `save` first counts the session's stored events with a
  second query (the same subquery again) to find which of the tracker's events
  are new, then inserts them one ORM object at a time. Here the tracker this
  store loaded carries how many of its events came from the store (an
  attribute set on load and after each save), so the new ones are known
  without a query, and they go in one multi-row insert. A tracker this store
  did not load (a new conversation, one built elsewhere) is counted with
  Rasa's query, as one Core statement (Rasa's
  ORM session for it was about 2 % of Rasa's CPU under load: every person's
  first message creates a tracker and saves it). Saving the same tracker
  twice stores each event once, also across a session start, where Rasa's
  count (of the new session only) would store the old session's events
  again.

- **The tracker of the turn before.** A server keeps the tracker it saved
  last for each conversation (`KEPT_TRACKERS` of them) and hands it out (once)
  at the next load if the conversation's newest stored event is still the one
  it saved: one indexed `max(id)` instead of reading, decoding and replaying
  the session. Another server's turn, an erasure, a turn not saved (its
  actions failed: the tracker was handed out and never came back) all mean a
  load. A tracker whose session started in its turn is not kept (a load gives
  the new session only). On SQLite, where only one Rasa server writes, an id
  freed by an erasure cannot come back under the same conversation before
  this server loads it again.
- **SQLite.** Rasa's engine for a SQLite file opens a connection for every
  load and save and commits in SQLite's default journal mode, with an fsync
  per commit (about 0.7 ms of Rasa's event loop each, 0.3 of it CPU, on this
  machine). Here a SQLite store uses the engine the gateway uses for its own
  SQLite file (`bot.db.make_engine`): pooled connections, WAL with
  `synchronous=NORMAL` (a commit survives a killed process; only a power cut
  can lose the last ones), a busy timeout. PostgreSQL keeps Rasa's engine.
- **Reads outside a transaction** (`bot.db.reading`): a load, and a save's
  reads when it writes nothing, run each statement on its own: on
  PostgreSQL no `BEGIN` before them and no `ROLLBACK` after.
- **An index on (sender_id, id)** (`bot.tracker_index`), made when the store
  starts if the migration Job has not made it: analyzed at about 50,000
  events, PostgreSQL found a conversation's newest event by reading the primary
  key backwards (docs/benchmarks.md, "A database with a past").

Rasa falls back to an in-memory tracker store, with only a warning, when a
custom store's class cannot be imported or its constructor raises
`AttributeError`/`ImportError`; this class turns those into a `RuntimeError`,
and `tests/deploy` checks that the deployed endpoints create it.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import OrderedDict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from rasa.shared.utils.common import all_subclasses

from bot.db import make_engine, read_connection
from bot.direct_sql import DirectStatement
from bot.tracker_index import SENDER_EVENTS_INDEX, ensure_sender_events_index

log = logging.getLogger(__name__)

SENDER_EVENTS = sa.Index(
    SENDER_EVENTS_INDEX,
    SQLTrackerStore.SQLEvent.__table__.c.sender_id,
    SQLTrackerStore.SQLEvent.__table__.c.id,
)
"""A conversation's events in order, and its newest one, on any statistics
(`bot.tracker_index`); made with the table for a new database."""
KEPT_TRACKERS = 1000
"""Conversations whose last saved tracker a Rasa server keeps (the least
recently saved go first): about the conversations in flight at once."""
STORED = "_prakerja_stored_events"
"""The attribute of a tracker this store loaded or saved: how many of its first
events are in the store (a turn's new events come after them)."""


class TurnSQLTrackerStore(SQLTrackerStore):
    """Rasa's `SQLTrackerStore` (same table, rows and session rule) that loads a
    conversation with one prepared statement and a class table, and saves a
    turn's new events with one insert (see the module)."""

    engine: sa.engine.Engine

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except (AttributeError, ImportError) as exc:
            # Rasa would fall back to an in-memory store on these: never silently.
            raise RuntimeError(f"cannot set up the SQL tracker store: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            self._use_engine(make_engine(self.engine.url.render_as_string(False)))
        ensure_sender_events_index(self.engine)
        events = self.SQLEvent.__table__
        sender = sa.bindparam("sender_id")
        session_start = (
            sa.select(sa.func.max(events.c.timestamp))
            .where(
                events.c.sender_id == sender,
                events.c.type_name == SessionStarted.type_name,
            )
            .scalar_subquery()
        )
        # Rasa's `_event_query(..., fetch_events_from_all_sessions=False)`.
        in_session = sa.and_(
            events.c.sender_id == sender,
            sa.or_(events.c.timestamp >= session_start, session_start.is_(None)),
        )
        self._session_events = DirectStatement(
            sa.select(events.c.data).where(in_session).order_by(events.c.id)
        )
        self._session_count = DirectStatement(
            sa.select(sa.func.count()).where(in_session)
        )
        self._insert = DirectStatement(events.insert(), values_from_parameters=True)
        self._newest = DirectStatement(
            sa.select(sa.func.max(events.c.id)).where(events.c.sender_id == sender)
        )
        self._kept: OrderedDict[str, tuple[int, Any, DialogueStateTracker]]
        self._kept = OrderedDict()

    def _use_engine(self, engine: sa.engine.Engine) -> None:
        """Work through `engine` instead of the one Rasa made."""
        self.engine.dispose()
        self.engine = engine
        self.sessionmaker.configure(bind=engine)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The conversation's tracker with the events of its latest session, as
        Rasa's `retrieve`; None when it has no events. The tracker this store
        saved last for the conversation is handed out again (once) while the
        store's newest event of the conversation is still the one it saved."""
        kept = self._kept.pop(sender_id, None)
        with read_connection(self.engine) as connection:
            if kept is not None and kept[1] is self.domain:
                newest = self._newest.execute(
                    connection, {"sender_id": sender_id}
                ).scalar()
                if newest == kept[0]:
                    return kept[2]
            rows = self._session_events.execute(
                connection, {"sender_id": sender_id}
            ).all()
        if not rows or not self.domain:
            return None
        events = deserialise_events(json.loads(data) for (data,) in rows)
        tracker = DialogueStateTracker.from_events(sender_id, events, self.domain.slots)
        setattr(tracker, STORED, len(tracker.events))
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store the tracker's events that are not in the store yet."""
        await self.stream_events(tracker)  # Rasa's event broker, if configured
        sender = {"sender_id": tracker.sender_id}
        stored = getattr(tracker, STORED, None)
        if not isinstance(stored, int):  # not loaded here: Rasa's count
            with read_connection(self.engine) as connection:
                stored = int(self._session_count.execute(connection, sender).scalar())
        rows = [
            _row(tracker.sender_id, event)
            for event in itertools.islice(tracker.events, stored, None)
        ]
        if rows:
            with self.engine.begin() as connection:
                self._insert.execute_rows(connection, rows)
                newest = self._newest.execute(connection, sender).scalar()
        else:  # nothing new: only the newest event's id, read
            with read_connection(self.engine) as connection:
                newest = self._newest.execute(connection, sender).scalar()
        setattr(tracker, STORED, len(tracker.events))
        if newest is not None and _as_loaded(tracker):
            self._kept[tracker.sender_id] = (int(newest), self.domain, tracker)
            self._kept.move_to_end(tracker.sender_id)
            if len(self._kept) > KEPT_TRACKERS:
                self._kept.popitem(last=False)


def _as_loaded(tracker: DialogueStateTracker) -> bool:
    """Whether `tracker` holds what loading it would give: its only session
    start, if any, is its first event (a load reads the latest session only)."""
    return all(
        index == 0
        for index, event in enumerate(tracker.events)
        if isinstance(event, SessionStarted)
    )


@lru_cache(maxsize=1)
def _event_classes() -> dict[str, type[Event]]:
    """Each event type's class as `Event.resolve_by_type` finds it: the first of
    `all_subclasses(Event)` with that `type_name` (built on first use, when
    Rasa's event classes are all imported)."""
    classes: dict[str, type[Event]] = {}
    for cls in all_subclasses(Event):
        classes.setdefault(cls.type_name, cls)
    return classes


def deserialise_events(dumps: Iterable[dict[str, Any]]) -> list[Event]:
    """`rasa.shared.core.events.deserialise_events`, each class from the table;
    a type not in it goes through Rasa's own lookup (and its errors)."""
    classes = _event_classes()
    events: list[Event] = []
    for dump in dumps:
        name = dump.get("event")
        if name is None:
            continue
        cls = classes.get(name)
        event = cls._from_parameters(dump) if cls else Event.from_parameters(dump)
        if event is not None:
            events.append(event)
        else:
            log.warning("event not deserialised: %s", name)
    return events


def _row(sender_id: str, event: Event) -> dict[str, Any]:
    """The `events` row Rasa's `SQLTrackerStore.save` writes for `event`."""
    data = event.as_dict()
    intent = data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY)
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": intent,
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }
