"""Inside Rasa: a form left open when the session expired is open again in the next.

After `session_expiration_time` (60 minutes, domain.yml) without a message,
Rasa starts a new session at the next one: its `action_session_start` carries
the slots over (`carry_over_slots_to_new_session`), but not the active loop.
Someone who typed their e-mail, went away and came back two hours later with
the code got it read outside the registration ("Terima kasih. Jangan kirim
NIK, KK atau data pribadi lain..."), the registration silently paused. Here
the new session also opens again the loop that was active (`ActiveLoop`, the
requested slot carried over as before), so the message is the answer to the
question the person was asked, as it would have been within the session:
that code, expired by then, is told so and a new one mailed; a question is
answered and the form's question asked again.

Why here and not as a custom `action_session_start` on the action server
(Rasa's documented way): that would be a round trip to the action server for
every new conversation (each person's first message: one action call more for
every five messages of the April 2020 peak) and a change of the domain; this is
Rasa's own action with one event added, run in Rasa, no call.
"""

from __future__ import annotations

from typing import Any

from rasa.core.actions.action import ActionSessionStart
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, ActiveLoop, Event

_RASA_RUN = ActionSessionStart.run


def with_loop_resumed(events: list[Event], loop: str | None) -> list[Event]:
    """`events` of a session start, with `loop` active again before the closing
    `action_listen` (unchanged without a loop, or with no closing listen)."""
    if not loop or not events:
        return events
    last = events[-1]
    if not isinstance(last, ActionExecuted) or last.action_name != ACTION_LISTEN_NAME:
        return events
    return [*events[:-1], ActiveLoop(loop), last]


async def run(self: ActionSessionStart, *args: Any, **kwargs: Any) -> list[Event]:
    """Rasa's session start, the loop of the session that ended kept open."""
    events: list[Event] = await _RASA_RUN(self, *args, **kwargs)
    tracker = kwargs.get("tracker", args[2] if len(args) > 2 else None)
    return with_loop_resumed(events, getattr(tracker, "active_loop_name", None))


def install() -> None:
    """Keep the active loop across a session start (idempotent)."""
    ActionSessionStart.run = run
