"""What the person is told: Indonesian, GSM-7 only, at most two SMS segments,
and always how to go back to the assistant; and what cancels a handoff."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from bot.channels.base import Reply
from bot.channels.sms.gsm7 import segment_info
from bot.channels.sms.render import render_sms
from bot.handoff import (
    WIB,
    AgentHours,
    agents_back_text,
    cancelled_text,
    is_cancel_command,
    out_of_hours_text,
    queued_text,
    wait_grew_text,
)
from bot.handoff.texts import duration

MONDAY_EVENING = datetime(2026, 11, 30, 21, 0, tzinfo=WIB)
WEEKDAYS = AgentHours(opens=time(8), closes=time(17), weekdays=frozenset(range(1, 6)))
ODD_DAYS = AgentHours(opens=time(7, 30), closes=time(16), weekdays=frozenset({1, 3, 5}))
LONGEST_WAIT = timedelta(hours=23, minutes=59)


def _all_texts() -> list[str]:
    texts = [cancelled_text()]
    for position in (1, 3, 120, 9999):
        for wait in (timedelta(seconds=10), timedelta(minutes=12), LONGEST_WAIT):
            texts.append(queued_text(position, wait))
            texts.append(wait_grew_text(position, wait))
            texts.append(agents_back_text(position, wait))
    for hours in (AgentHours(), WEEKDAYS, ODD_DAYS):
        for days in range(7):
            texts.append(
                out_of_hours_text(hours, MONDAY_EVENING + timedelta(days=days))
            )
    return texts


@pytest.mark.parametrize("text", _all_texts())
def test_every_text_is_gsm7_in_at_most_two_segments(text: str) -> None:
    info = segment_info(text)
    assert info.encoding == "GSM-7", text
    assert 1 <= info.segments <= 2, (info, text)
    [body], _ = render_sms([Reply(text=text)], {})
    assert body["text"] == text  # the SMS channel sends it whole, unchanged


def test_the_queued_text_tells_place_wait_and_how_to_cancel() -> None:
    assert queued_text(3, timedelta(minutes=12)) == (
        "Permintaanmu sudah masuk antrean petugas. Posisimu: ke-3, perkiraan "
        "tunggu sekitar 12 menit. Petugas akan membalas di sini. Ketik BATAL "
        "untuk kembali ke asisten otomatis."
    )


def test_the_wait_grew_text_tells_the_new_place_and_wait() -> None:
    text = wait_grew_text(2, timedelta(minutes=75))
    assert "ke-2" in text and "1 jam 15 menit" in text and "Ketik BATAL" in text
    assert text.startswith("Maaf")


@pytest.mark.parametrize(
    ("wait", "words"),
    [
        (timedelta(0), "1 menit"),
        (timedelta(seconds=61), "2 menit"),
        (timedelta(minutes=60), "1 jam"),
        (timedelta(minutes=125), "2 jam 5 menit"),
    ],
)
def test_waits_are_rounded_up_to_minutes(wait: timedelta, words: str) -> None:
    assert duration(wait) == words


def test_out_of_hours_tells_the_hours_and_when_an_agent_replies() -> None:
    assert out_of_hours_text(AgentHours(), MONDAY_EVENING) == (
        "Petugas kami bekerja setiap hari pukul 08.00-20.00 WIB. Pesanmu sudah "
        "kami catat; petugas akan membalas di sini mulai besok pukul 08.00 WIB. "
        "Ketik BATAL untuk kembali ke asisten otomatis."
    )
    early = datetime(2026, 11, 30, 6, 15, tzinfo=WIB)
    assert "mulai hari ini pukul 08.00 WIB" in out_of_hours_text(AgentHours(), early)
    friday = MONDAY_EVENING + timedelta(days=4)
    weekend = out_of_hours_text(WEEKDAYS, friday)
    assert "bekerja Senin-Jumat pukul 08.00-17.00 WIB" in weekend
    assert "mulai hari Senin pukul 08.00 WIB" in weekend
    odd = out_of_hours_text(ODD_DAYS, MONDAY_EVENING)
    assert "bekerja Senin, Rabu, Jumat pukul 07.30-16.00 WIB" in odd
    assert "mulai hari Rabu pukul 07.30 WIB" in odd


def test_out_of_hours_reads_naive_moments_as_utc() -> None:
    naive_utc = datetime(2026, 11, 30, 14, 0)  # 21:00 WIB
    assert "mulai besok pukul 08.00" in out_of_hours_text(AgentHours(), naive_utc)


@pytest.mark.parametrize(
    "text",
    [
        "batal",
        "BATAL",
        " Batal. ",
        "batal!",
        "kembali ke bot",
        "Kembali  ke  Bot",
        "selesai",
        "cancel",
        "/handoff_cancel",
    ],
)
def test_cancel_commands(text: str) -> None:
    assert is_cancel_command(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "batalkan pendaftaran",
        "saya mau batal daftar",
        "handoff_cancel",
        "1",
        "stop",
        "tidak",
    ],
)
def test_other_messages_do_not_cancel(text: str | None) -> None:
    assert not is_cancel_command(text)
