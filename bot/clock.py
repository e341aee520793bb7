"""The programme's clock: dates are those of Jakarta (WIB)."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")


def today_wib() -> date:
    """Return today's date in Western Indonesia Time."""
    return datetime.now(WIB).date()
