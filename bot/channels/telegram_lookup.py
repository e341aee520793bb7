"""Did a Telegram message arrive? Asked of the chat itself, without a resend.

Telegram has no way to list what a bot sent. But in a private chat message ids
count up one by one for both sides, and a bot may edit its own messages: asked
to set a message to exactly the text and buttons it already has, Telegram
answers "message is not modified"; for an id with no message, "message to edit
not found"; for the person's message, "message can't be edited". So when a send
had an unknown outcome (the process died, or the answer never came), `after` is
the id of a message that was in the chat before the attempt (the last reply
known to have arrived, or the person's own message: `bot.gateway.chat_anchor`)
and every message the bot sent after it is known, the ids after it tell:

- one of them holds exactly this text and these buttons: the send arrived, and
  that is its id (any bot message after `after` is this send's: earlier sends
  are known and later ones wait for it, `bot.gateway.outbox`);
- the first ids after `after` are the person's messages or empty, and from the
  first empty one on every probed id is empty: the send provably did not arrive
  (ids are given out in order, so nothing comes after an empty one unless a
  message was deleted, which the empties after it rule out within `PROBES`);
- anything else (the person wrote more than `PROBES` messages meanwhile, or an
  id is taken after an empty one): it cannot be told (`undecidable`), and the
  send is not repeated.

"Not there" is the answer now: a request that left a process just before it
died may still be on its way, or being handled (seen in the soak: probed 2 s
after the kill, it landed after the probe), so the outbox takes it as proof
only once the request cannot still land (`TelegramSender.request_in_flight`),
and looks again until then.

The probe never changes a message: it only asks to set the same text and
buttons. An edit that does change a message would mean a message of ours was
not recorded; it is logged as an error and the outcome stays undecided.
"""

from __future__ import annotations

import logging

from telegram import Bot, InlineKeyboardMarkup
from telegram.error import BadRequest, TelegramError

from bot.channels.base import LookupResult

log = logging.getLogger(__name__)

PROBES = 5
"""Ids after the last known one that are asked about, at most."""
NOT_MODIFIED = "message is not modified"
NOT_FOUND = "message to edit not found"
NOT_OURS = "message can't be edited"


async def look_up_sent(
    bot: Bot,
    chat_id: int | str,
    text: str,
    keyboard: InlineKeyboardMarkup | None,
    after: int,
) -> LookupResult:
    """Whether a message with `text` and `keyboard` arrived in the chat after
    message id `after` (see the module's rule)."""
    empty_from: int | None = None
    for message_id in range(after + 1, after + 1 + PROBES):
        answer = await _probe(bot, chat_id, message_id, text, keyboard)
        if isinstance(answer, LookupResult):
            return answer
        if answer == NOT_MODIFIED:
            if empty_from is not None:  # a hole before it: deleted messages
                return LookupResult(undecidable=True)
            return LookupResult(ids=(str(message_id),))
        if answer == NOT_FOUND:
            empty_from = empty_from or message_id
        elif empty_from is not None:  # taken after an empty id
            return LookupResult(undecidable=True)
    if empty_from is None:
        return LookupResult(undecidable=True)
    return LookupResult()  # not there (yet: see the module's rule)


async def _probe(
    bot: Bot,
    chat_id: int | str,
    message_id: int,
    text: str,
    keyboard: InlineKeyboardMarkup | None,
) -> str | LookupResult:
    """What Telegram says of setting message `message_id` to the same text:
    NOT_MODIFIED, NOT_FOUND, NOT_OURS, or a final LookupResult."""
    try:
        await bot.edit_message_text(
            text=text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard
        )
    except BadRequest as exc:
        said = exc.message.lower()
        for answer in (NOT_MODIFIED, NOT_FOUND, NOT_OURS):
            if answer in said:
                return answer
        return LookupResult(error=f"edit refused: {type(exc).__name__}")
    except TelegramError as exc:  # network, rate limit: look again later
        return LookupResult(error=type(exc).__name__)
    log.error("lookup edit changed message %s: one was not recorded", message_id)
    return LookupResult(undecidable=True)
