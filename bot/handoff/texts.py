"""What the person is told about the handoff, in Indonesian.

Every text is GSM-7 only (no emoji, curly quotes or en-dashes) and fits in two
SMS segments, so a feature phone gets it whole; each one says how to go back to
the assistant ("Ketik BATAL").
"""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta

from bot.handoff.hours import AgentHours, in_wib
from bot.policy.catalogue import say

DAY_NAMES = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
"""Indonesian names of the ISO weekdays 1-7."""
_TEXTS = {
    "HOW_TO_CANCEL": "handoff.how_to_cancel",
    "CANCELLED_TEXT": "handoff.cancelled",
    "WITH_AGENT_TEXT": "handoff.with_agent",
}


def __getattr__(name: str) -> str:
    """The fixed texts of ``_TEXTS``, from the text catalogue."""
    if name in _TEXTS:
        return say(_TEXTS[name])
    raise AttributeError(name)


def cancelled_text() -> str:
    """The request for a person was cancelled: back to the assistant."""
    return say("handoff.cancelled")


def with_agent_text() -> str:
    """An agent already has the conversation."""
    return say("handoff.with_agent")


def clock(moment: time) -> str:
    """A time as Indonesians write it: 08.00."""
    return f"{moment.hour:02d}.{moment.minute:02d}"


def wait_minutes(wait: timedelta) -> int:
    """A wait in whole minutes, rounded up, at least 1."""
    return max(1, math.ceil(wait.total_seconds() / 60))


def duration(wait: timedelta) -> str:
    """A wait in words: "12 menit", "1 jam", "1 jam 5 menit"."""
    minutes = wait_minutes(wait)
    hours, rest = divmod(minutes, 60)
    if not hours:
        return say("handoff.minutes", minutes=rest)
    if rest:
        return say("handoff.hours_minutes", hours=hours, minutes=rest)
    return say("handoff.hours", hours=hours)


def _days(weekdays: frozenset[int]) -> str:
    """The working days: "setiap hari", "Senin-Jumat", "Senin, Rabu, Jumat"."""
    if len(weekdays) == len(DAY_NAMES):
        return say("handoff.every_day")
    ordered = sorted(weekdays)
    runs: list[list[int]] = []
    for day in ordered:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = [
        DAY_NAMES[run[0] - 1]
        if len(run) == 1
        else f"{DAY_NAMES[run[0] - 1]}-{DAY_NAMES[run[-1] - 1]}"
        for run in runs
    ]
    return ", ".join(parts)


def _when(opening: datetime, now: datetime) -> str:
    """When agents are back: "hari ini", "besok" or "hari Senin", with the time."""
    days = (opening.date() - in_wib(now).date()).days
    if days <= 0:
        day = say("handoff.today")
    elif days == 1:
        day = say("handoff.tomorrow")
    else:
        day = say("handoff.on_day", day=DAY_NAMES[opening.isoweekday() - 1])
    return say("handoff.at", day=day, time=clock(opening.time()))


def queued_text(position: int, wait: timedelta) -> str:
    """The ticket is open: place in the queue and expected wait."""
    return say("handoff.queued", position=max(position, 1), wait=duration(wait))


def wait_grew_text(position: int, wait: timedelta) -> str:
    """The expected wait grew since the person was last told."""
    return say("handoff.wait_grew", position=max(position, 1), wait=duration(wait))


def agents_back_text(position: int, wait: timedelta) -> str:
    """Agents came on duty for someone who asked out of hours."""
    return say("handoff.agents_back", position=max(position, 1), wait=duration(wait))


def out_of_hours_text(hours: AgentHours, now: datetime) -> str:
    """Nobody is on duty now: the hours (WIB), that the message is kept, and
    when an agent will reply."""
    opening = hours.next_opening(now)
    return say(
        "handoff.out_of_hours",
        days=_days(hours.weekdays),
        opens=clock(hours.opens),
        closes=clock(hours.closes),
        when=_when(opening, now),
    )
