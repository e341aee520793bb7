"""The programme's clock: dates are those of Jakarta (WIB)."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")


def now_wib() -> datetime:
    """Return the current time in Western Indonesia Time."""
    return datetime.now(WIB)


def today_wib() -> date:
    """Return today's date in Western Indonesia Time."""
    return now_wib().date()
