"""What the person is told about the handoff, in Indonesian.

Every text is GSM-7 only (no emoji, curly quotes or en-dashes) and fits in two
SMS segments, so a feature phone gets it whole; each one says how to go back to
the assistant ("Ketik BATAL").
"""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta

from bot.handoff.hours import AgentHours, in_wib

DAY_NAMES = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
"""Indonesian names of the ISO weekdays 1-7."""
HOW_TO_CANCEL = "Ketik BATAL untuk kembali ke asisten otomatis."
CANCELLED_TEXT = (
    "Oke, permintaan bicara dengan petugas dibatalkan. "
    "Kamu kembali dilayani asisten otomatis."
)


WITH_AGENT_TEXT = "Petugas sudah menangani percakapan ini dan akan membalas di sini."


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
        return f"{rest} menit"
    return f"{hours} jam {rest} menit" if rest else f"{hours} jam"


def _days(weekdays: frozenset[int]) -> str:
    """The working days: "setiap hari", "Senin-Jumat", "Senin, Rabu, Jumat"."""
    if len(weekdays) == len(DAY_NAMES):
        return "setiap hari"
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
        day = "hari ini"
    elif days == 1:
        day = "besok"
    else:
        day = f"hari {DAY_NAMES[opening.isoweekday() - 1]}"
    return f"{day} pukul {clock(opening.time())}"


def queued_text(position: int, wait: timedelta) -> str:
    """The ticket is open: place in the queue and expected wait."""
    return (
        "Permintaanmu sudah masuk antrean petugas. "
        f"Posisimu: ke-{max(position, 1)}, perkiraan tunggu sekitar "
        f"{duration(wait)}. Petugas akan membalas di sini. {HOW_TO_CANCEL}"
    )


def wait_grew_text(position: int, wait: timedelta) -> str:
    """The expected wait grew since the person was last told."""
    return (
        "Maaf, antrean petugas sedang lebih panjang dari perkiraan. "
        f"Posisimu sekarang: ke-{max(position, 1)}, perkiraan tunggu sekitar "
        f"{duration(wait)}. Petugas akan membalas di sini. {HOW_TO_CANCEL}"
    )


def agents_back_text(position: int, wait: timedelta) -> str:
    """Agents came on duty for someone who asked out of hours."""
    return (
        "Petugas kami sudah mulai bekerja. "
        f"Posisimu: ke-{max(position, 1)}, perkiraan tunggu sekitar "
        f"{duration(wait)}. Petugas akan membalas di sini. {HOW_TO_CANCEL}"
    )


def out_of_hours_text(hours: AgentHours, now: datetime) -> str:
    """Nobody is on duty now: the hours (WIB), that the message is kept, and
    when an agent will reply."""
    opening = hours.next_opening(now)
    return (
        f"Petugas kami bekerja {_days(hours.weekdays)} pukul "
        f"{clock(hours.opens)}-{clock(hours.closes)} WIB. Pesanmu sudah kami "
        "catat; petugas akan membalas di sini mulai "
        f"{_when(opening, now)} WIB. {HOW_TO_CANCEL}"
    )
