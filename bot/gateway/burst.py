"""Stale bursts: one answer to the messages a person sent while they waited.

The rule. A message is *stale* when it waited at least `stale_after` seconds
(`GatewayOptions`) before the worker took it. When a stale message has more of
the same person's messages waiting right behind it, the conversation is in a
*burst*, and until the last of those messages:

- every message still gets its own Rasa turn, in order, with its own
  idempotency key, exactly as if it had been answered in time. Nothing the
  person typed is joined or dropped: a form that takes free text (a name, an
  e-mail) gets each answer whole, and a menu number or a button is read
  against the menu of the answer before it, as always;
- but the answers are *held*: stored with the conversation's state (in the
  same commit that marks the message done, so a crash loses none) instead of
  in the outbox, and sent as **one answer** with the last message's: the texts
  of the earlier turns in order (a text repeated later is kept once), then the
  last turn's replies, whose buttons are the only ones kept (the channels
  accept only the latest buttons anyway);
- a message that says the same as the next one (case, spaces and punctuation
  aside: "halo", "Halo?", "HALO !") is *superseded*: marked done, with the
  note `SUPERSEDED`, without a turn. The person typed it again before any
  answer came, so the later one says it all; two "ya" cannot answer two
  questions the person never saw.

A message only joins a burst when it is a plain turn (`plain_turn`): typed by
the person, read by the channel as text for Rasa, with no local reply (STOP,
next page, a Telegram button's callback answer), no opt-out change and no
agent's ticket. Anything else ends the burst first: the held answers go out
before it (also when the last turn fails and is retried or given up, or the
message waits for Rasa), so an answer is never stuck behind a message that
cannot be answered now. A burst holds at most `MAX_BURST` turns.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from bot.channels.base import Button, Channel, InboundMessage, Reply

HELD_KEY = "held"
"""The conversation state's key for the held answers (the channels keep keys
they do not know)."""
SUPERSEDED = "superseded: repeated by the next message"
"""The note (`last_error`) of a message superseded by its repeat."""
HELD = "held: answered with a later message"
"""The note (`last_error`) of a message whose answer is held (its burst's
answer goes out with a later message's)."""
MAX_BURST = 10
"""Turns held at most before the answers go out anyway."""

_NOT_WORD = re.compile(r"[\W_]+")


def is_stale(received_at: datetime, taken_at: datetime, stale_after: float) -> bool:
    """Whether a message taken at `taken_at` waited at least `stale_after` s."""
    return received_at <= taken_at - timedelta(seconds=stale_after)


def same_words(first: str, second: str) -> bool:
    """Whether two texts say the same, ignoring case, spaces and punctuation."""
    words = _NOT_WORD.sub(" ", first.casefold()).split()
    return bool(words) and words == _NOT_WORD.sub(" ", second.casefold()).split()


def plain_turn(
    channel: Channel, message: InboundMessage, state: dict[str, Any], opted_out: bool
) -> str | None:
    """The text Rasa would get for `message`, when it is a plain turn (see the
    module's rule); None for anything else."""
    if opted_out or message.event is not None:
        return None
    try:
        interpretation = channel.interpret(message, state, opted_out)
    except Exception:  # the worker reports a channel bug when it gets there
        return None
    text = interpretation.rasa_text
    if (
        not text
        or not text.strip()
        or interpretation.local_bodies
        or interpretation.opted_out is not None
    ):
        return None
    return text


def _reply_json(reply: Reply) -> dict[str, Any]:
    return {
        "text": reply.text,
        "buttons": [[button.title, button.payload] for button in reply.buttons],
        "image_url": reply.image_url,
    }


def _reply(data: Any) -> Reply:
    if not isinstance(data, dict):
        return Reply(text="")
    buttons = tuple(
        Button(title=str(pair[0]), payload=str(pair[1]))
        for pair in data.get("buttons") or []
        if isinstance(pair, list) and len(pair) == 2
    )
    image = data.get("image_url")
    return Reply(
        text=str(data.get("text") or ""),
        buttons=buttons,
        image_url=str(image) if image else None,
    )


def held_turns(state: dict[str, Any]) -> list[list[Reply]]:
    """The replies of the held turns, oldest first ([] when none)."""
    held = state.get(HELD_KEY)
    turns = held.get("turns") if isinstance(held, dict) else None
    if not isinstance(turns, list):
        return []
    return [[_reply(item) for item in turn] for turn in turns if isinstance(turn, list)]


def held_inbox_id(state: dict[str, Any]) -> int | None:
    """The inbox id of the last held turn (its answers are stored under it)."""
    held = state.get(HELD_KEY)
    value = held.get("inbox_id") if isinstance(held, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def with_held(
    state: dict[str, Any], turns: list[list[Reply]], inbox_id: int
) -> dict[str, Any]:
    """`state` holding `turns`, the last of which answered `inbox_id`."""
    return {
        **state,
        HELD_KEY: {
            "inbox_id": inbox_id,
            "turns": [[_reply_json(reply) for reply in turn] for turn in turns],
        },
    }


def without_held(state: dict[str, Any]) -> dict[str, Any]:
    """`state` with no held answers."""
    return {key: value for key, value in state.items() if key != HELD_KEY}


def combine(turns: list[list[Reply]], buttons: bool = True) -> list[Reply]:
    """One answer from the replies of several turns (oldest first): the earlier
    turns' texts (each kept at its last occurrence, images and buttons dropped)
    folded into the last turn's first reply, then the last turn's other replies;
    `buttons=False` drops the last turn's buttons too."""
    if not turns:
        return []
    *earlier, last = turns
    if not buttons:
        last = [Reply(text=reply.text, image_url=reply.image_url) for reply in last]
    later_texts = [reply.text.strip() for reply in last]
    texts: list[str] = []
    for turn in earlier:
        for reply in turn:
            text = reply.text.strip()
            if text:
                texts.append(text)
    kept = [
        text
        for index, text in enumerate(texts)
        if text not in texts[index + 1 :] and text not in later_texts
    ]
    if not kept:
        return list(last)
    if not last:
        return [Reply(text="\n\n".join(kept))]
    first, rest = last[0], last[1:]
    text = "\n\n".join([*kept, first.text.strip()] if first.text.strip() else kept)
    return [Reply(text=text, buttons=first.buttons, image_url=first.image_url), *rest]
