"""Inside Rasa: a form left open when the session expired is open again in the next.

After `session_expiration_time` (60 minutes, domain.yml) without a message,
Rasa starts a new session at the next one: its `action_session_start` carries
the slots over (`carry_over_slots_to_new_session`), but not the active loop.
Someone who typed their e-mail, went away and came back two hours later with
the code got it read outside the registration ("Terima kasih. Jangan kirim
NIK, KK atau data pribadi lain..."), the registration silently paused. Here
the new session also opens again the registration or eligibility form that
was active (`ActiveLoop`, the requested slot carried over as before) and says
so (the form's own "Kita lanjutkan ..."), so the message is the answer to the
question the person was asked, as it would have been within the session:
that code, expired by then, is told so and a new one mailed; a question is
answered and the form's question asked again.

Not every form, and not for ever (`RESUMED_FORMS`, `RESUME_WITHIN`): not the
link form (its code lives 15 minutes, so at a new session it is always dead),
not the erasure form (a "ya" typed days later to something else would
confirm an erasure; asked for again, both start afresh: `started_afresh` in
`actions/forms.py`), not a form the model no longer has, and not after a day
without a message (the answers' vault tokens live seven days; a person back
after a day types DAFTAR, which resumes with the answers kept).

Why here and not as a custom `action_session_start` on the action server
(Rasa's documented way): that would be a round trip to the action server for
every new conversation (each person's first message: one action call more for
every five messages of the April 2020 peak) and a change of the domain; this is
Rasa's own action with two events added, run in Rasa, no call.
"""

from __future__ import annotations

import time
from typing import Any

from rasa.core.actions.action import ActionSessionStart, create_bot_utterance
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, ActiveLoop, Event, UserUttered

RESUMED_FORMS = {
    "registration_form": "utter_registration_continue",
    "eligibility_form": "utter_form_continue",
}
"""The forms a new session opens again, each with the response said first."""
RESUME_WITHIN = 24 * 3600.0
"""Seconds since the person's last message within which a form is opened again."""

_RASA_RUN = ActionSessionStart.run


def resumed_form(tracker: Any, form_names: list[str], now: float) -> str | None:
    """The form the ending session leaves open that the next opens again, or
    None (no form, not one of `RESUMED_FORMS`, not in the model's domain, or
    the person's last message older than `RESUME_WITHIN`)."""
    form = getattr(tracker, "active_loop_name", None)
    if form not in RESUMED_FORMS or form not in form_names:
        return None
    last = tracker.get_last_event_for(UserUttered)
    if last is None or now - last.timestamp > RESUME_WITHIN:
        return None
    return str(form)


def with_form_resumed(
    events: list[Event], form: str | None, said: list[Event]
) -> list[Event]:
    """`events` of a session start, with `form` active again and `said` before
    the closing `action_listen` (unchanged without a form, or without a
    closing listen)."""
    if not form or not events:
        return events
    last = events[-1]
    if not isinstance(last, ActionExecuted) or last.action_name != ACTION_LISTEN_NAME:
        return events
    return [*events[:-1], ActiveLoop(form), *said, last]


async def run(
    self: ActionSessionStart,
    output_channel: Any,
    nlg: Any,
    tracker: Any,
    domain: Any,
    **kwargs: Any,
) -> list[Event]:
    """Rasa's session start, a form the ending session left open kept open."""
    events: list[Event] = await _RASA_RUN(
        self, output_channel, nlg, tracker, domain, **kwargs
    )
    form = resumed_form(tracker, domain.form_names, time.time())
    if form is None:
        return events
    notice = await nlg.generate(RESUMED_FORMS[form], tracker, output_channel.name())
    said = [create_bot_utterance(notice)] if notice else []
    return with_form_resumed(events, form, said)


def install() -> None:
    """Keep a form open across a session start (idempotent)."""
    ActionSessionStart.run = run
