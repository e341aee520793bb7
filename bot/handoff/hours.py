"""When agents are on duty: opening hours in WIB on some ISO weekdays.

`AGENT_HOURS` ("08:00-20:00") and `AGENT_DAYS` ("1-7", Monday is 1) come from
the settings. The hours are a window within one day: open from `opens`
(inclusive) to `closes` (exclusive). Naive datetimes are read as UTC, as they
are stored (`bot.db.utcnow`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from bot.settings import DEFAULT_AGENT_DAYS, DEFAULT_AGENT_HOURS, Settings

WIB = timezone(timedelta(hours=7), "WIB")
"""Western Indonesia Time (UTC+7, no daylight saving)."""
WEEK = 7


def in_wib(moment: datetime) -> datetime:
    """`moment` in WIB (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(WIB)


def start_of_day_wib(moment: datetime) -> datetime:
    """Midnight WIB of the day `moment` falls on (WIB)."""
    return datetime.combine(in_wib(moment).date(), time(0), tzinfo=WIB)


@dataclass(frozen=True)
class AgentHours:
    """Agents work from `opens` to `closes` (WIB) on `weekdays` (ISO, 1-7)."""

    opens: time = DEFAULT_AGENT_HOURS[0]
    closes: time = DEFAULT_AGENT_HOURS[1]
    weekdays: frozenset[int] = DEFAULT_AGENT_DAYS

    def __post_init__(self) -> None:
        if not self.opens < self.closes:
            raise ValueError("agent hours must open before they close")
        if not self.weekdays or not self.weekdays <= set(range(1, WEEK + 1)):
            raise ValueError("agent days must be ISO weekdays between 1 and 7")

    @classmethod
    def from_settings(cls, settings: Settings) -> AgentHours:
        """The hours configured by AGENT_HOURS and AGENT_DAYS."""
        opens, closes = settings.agent_hours
        return cls(opens=opens, closes=closes, weekdays=settings.agent_days)

    @property
    def every_day(self) -> bool:
        """Agents work on all seven days."""
        return len(self.weekdays) == WEEK

    def is_open(self, now: datetime) -> bool:
        """Whether agents are on duty at `now`."""
        local = in_wib(now)
        return (
            local.isoweekday() in self.weekdays
            and self.opens <= local.time().replace(tzinfo=None) < self.closes
        )

    def next_opening(self, now: datetime) -> datetime:
        """The first moment at or after `now` when agents are on duty (WIB):
        `now` itself while open."""
        if self.is_open(now):
            return in_wib(now)
        local = in_wib(now)
        day: date = local.date()
        for offset in range(WEEK + 1):
            candidate = datetime.combine(
                day + timedelta(days=offset), self.opens, tzinfo=WIB
            )
            if candidate >= local and candidate.isoweekday() in self.weekdays:
                return candidate
        raise AssertionError("no opening within a week")  # weekdays is never empty
