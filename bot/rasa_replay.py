"""Inside Rasa: a turn repeated with the key of a complete turn is replayed, not run.

The gateway sends each message with its inbox id as `metadata["idempotency_key"]`.
If a gateway process dies after Rasa saved a turn but before the gateway stored
the replies, another process sends the same message again. Run again, it would be
a new turn on a tracker that has already moved on (the e-mail code read as a
NIK). So the gateway channel (`bot.rasa_channel`) makes the agent's processor a
`GatewayProcessor`, which adds two things to Rasa's own turn:

- **Marks a complete turn.** Just before the tracker is saved, if no call to the
  action server failed in the turn, the turn's `UserUttered` event gets
  `"turn_complete": true` in its metadata. It is saved with the turn's events in
  the tracker store's one write, so "saved" and "marked" cannot diverge. A turn
  whose actions failed is not saved at all: repeated, it runs again whole on
  the tracker as it was before it, as if the failed attempt never happened
  (what its actions did is replayed from the effect ledger, `bot.effects`).
  Saved, its half (a form whose validation failed, deactivated) made the
  repeat a different turn: a birth date typed into the registration form got
  the "don't send personal data" warning and the form was gone (seen in the
  soak, with the action server killed mid-turn).
- **Replays it.** When a turn with a key starts, right after Rasa loaded the
  tracker, the tracker's events are searched for the latest `UserUttered` with
  that key. If it is marked, the turn stops there (`TurnAlreadyCompleted`, before
  the NLU, the actions and the save): the channel answers with that turn's
  `BotUttered` replies, as Rasa sent them the first time, and the tracker is
  unchanged.

The check runs inside `Agent.handle_message`, under Rasa's conversation lock
(the `RedisLockStore` when several Rasa servers share the tracker store), on the
tracker just read from the store: two copies of one message arriving at once, at
one Rasa server or two, run the turn once and replay it once.

Cost per turn, by the numbers (2-core development machine, shared, load 5-8;
timeit, best of 7): no extra read or write. The tracker Rasa loads anyway is
scanned from its end (the SQL tracker store loads the current session only): for
a new key the whole session, about 50 microseconds for 60 turns (540 events);
marking the turn, about 1 microsecond. A FAQ turn through Rasa takes about
250 ms. A record per key in Redis (or the database) was weighed and rejected: a
read and a write per turn (a GET took about 80 and a SET about 100 microseconds
on the same machine), and it cannot be saved with the tracker in one write, so a
crash between the two would leave the gap open.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Reversible
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from rasa.core.channels.channel import OutputChannel
from rasa.core.processor import MessageProcessor
from rasa.shared.core.events import BotUttered, Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

log = logging.getLogger(__name__)

KEY = "idempotency_key"
"""The metadata field with the turn's idempotency key (the gateway's inbox id)."""
KEY_MAX = 64
COMPLETE = "turn_complete"
"""The metadata field that marks the `UserUttered` of a complete turn."""


def idempotency_key(metadata: Any) -> str | None:
    """The message's idempotency key, if it carries a usable one."""
    value = metadata.get(KEY) if isinstance(metadata, Mapping) else None
    if value is None:
        return None
    key = str(value).strip()
    return key if 0 < len(key) <= KEY_MAX else None


@dataclass
class KeyedTurn:
    """The turn being handled: whose, its key, and the actions that failed."""

    sender_id: str
    key: str
    failures: list[str] = field(default_factory=list)
    """Filled while the turn runs (shared with the channel's failure reports)."""
    checked: bool = False
    """Whether the tracker has been searched for the key already."""


_turn: ContextVar[KeyedTurn | None] = ContextVar("prakerja_keyed_turn", default=None)


@contextmanager
def keyed_turn(turn: KeyedTurn) -> Iterator[KeyedTurn]:
    """Handle the messages in this block as the turn `turn`."""
    token = _turn.set(turn)
    try:
        yield turn
    finally:
        _turn.reset(token)


class TurnAlreadyCompleted(Exception):  # noqa: N818 - an outcome, not an error
    """The message's key had a complete turn: its replies, to send again."""

    def __init__(self, key: str, replies: list[dict[str, Any]]) -> None:
        self.key = key
        self.replies = replies
        super().__init__(f"turn {key} already complete")


def _has_key(event: UserUttered, key: str) -> bool:
    value = event.metadata.get(KEY)  # Rasa's events always have a metadata dict
    return value is not None and str(value).strip() == key


def recorded_replies(
    events: Reversible[Event], key: str
) -> list[dict[str, Any]] | None:
    """The replies of the latest turn with `key`, if that turn is marked complete;
    None when there is none or it did not complete (then it must run again)."""
    said: list[BotUttered] = []
    for event in reversed(events):  # `type() is`: Event's ABC isinstance is slow
        if type(event) is BotUttered:
            said.append(event)
        elif type(event) is UserUttered:
            if _has_key(event, key):
                if event.metadata.get(COMPLETE) is True:
                    return [bot.message() for bot in reversed(said)]
                return None
            said.clear()
    return None


def mark_complete(events: Reversible[Event], key: str) -> bool:
    """Mark the latest `UserUttered` with `key` as a complete turn; False if none."""
    for event in reversed(events):
        if type(event) is UserUttered and _has_key(event, key):
            event.metadata = {**event.metadata, COMPLETE: True}
            return True
    return False


def _current(sender_id: str) -> KeyedTurn | None:
    turn = _turn.get()
    return turn if turn is not None and turn.sender_id == sender_id else None


class GatewayProcessor(MessageProcessor):
    """Rasa's processor, plus the replay of complete turns (see the module)."""

    async def fetch_tracker_and_update_session(
        self,
        sender_id: str,
        output_channel: OutputChannel | None = None,
        metadata: dict | None = None,
    ) -> DialogueStateTracker:
        """Rasa's fetch; raises TurnAlreadyCompleted when the turn's key had a
        complete turn (checked once per turn, on the tracker just loaded)."""
        tracker = await super().fetch_tracker_and_update_session(
            sender_id, output_channel, metadata
        )
        turn = _current(sender_id)
        if turn is not None and not turn.checked:
            turn.checked = True
            replies = recorded_replies(tracker.events, turn.key)
            if replies is not None:
                raise TurnAlreadyCompleted(turn.key, replies)
        return tracker

    async def save_tracker(self, tracker: DialogueStateTracker) -> None:
        """Mark the turn complete and save it; a turn whose actions failed is
        not saved (it runs again whole when repeated)."""
        turn = _current(tracker.sender_id)
        if turn is not None:
            if turn.failures:
                log.info("turn %s incomplete: not saved, to run again whole", turn.key)
                return
            mark_complete(tracker.events, turn.key)
        await super().save_tracker(tracker)


def install_replay(agent: Any) -> None:
    """Make the agent's processor a `GatewayProcessor` (idempotent; a model loaded
    later gets a new processor, which is changed on its first turn).

    Rasa 3.6 has no setting for the processor's class and its constructor loads
    the model, so the instance's class is changed: the subclass adds methods only,
    no state."""
    processor: Any = getattr(agent, "processor", None)
    if type(processor) is MessageProcessor:
        processor.__class__ = GatewayProcessor
    elif processor is not None and not isinstance(processor, GatewayProcessor):
        log.warning(
            "processor %s is not Rasa's own: turns are not replayed",
            type(processor).__name__,
        )
