"""Result texts: GSM-7, one or two SMS, in each policy version; status tells the
result only once published, the deadline, and the revoked card after it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from bot.channels.sms.gsm7 import GSM7_BASIC, GSM7_EXTENSION, segment_info
from bot.policy.programme import known_versions, load_policy
from bot.registration.results import (
    EXCLUSION_REASONS,
    announcement_text,
    reminder_text,
)
from bot.registration.status import next_action, status_text
from bot.registry import MembershipInfo
from bot.registry.models import RESULT_SELECTED
from bot.selection.announcements import TEXT_KEYS
from tests.registration.test_status import standing

DEADLINE = datetime(2026, 9, 29, 16, 59)  # the longest month name


def _fits(text: str) -> None:
    assert set(text) <= set(GSM7_BASIC) | set(GSM7_EXTENSION), text
    assert segment_info(text).segments <= 2, (len(text), text)


@pytest.mark.parametrize("version", known_versions())
@pytest.mark.parametrize("key", TEXT_KEYS)
@pytest.mark.parametrize("reason", [None, *EXCLUSION_REASONS])
def test_every_announcement_fits_two_sms(version: str, key: str, reason: str) -> None:
    text = announcement_text(key, load_policy(version), 123, DEADLINE, reason)
    _fits(text)
    assert "kamu" in text.lower()


def test_the_selected_text_names_the_deadline_and_the_balance() -> None:
    old = announcement_text("selected", load_policy("2020"), 1, DEADLINE)
    new = announcement_text("selected", load_policy("2023"), 1, DEADLINE)
    assert "Rp1.000.000" in old and "Rp3.500.000" in new
    assert "29 September 2026 pukul 23.59 WIB" in old
    again = announcement_text("not_selected_again", load_policy("2021"), 1)
    assert "gagal 3 kali" in again


def test_reminders_fit_one_or_two_sms() -> None:
    for days in (7, 2):
        _fits(reminder_text(DEADLINE, days))


def test_status_hides_results_until_published_and_revokes_after_the_deadline() -> None:
    state = standing("done", membership=RESULT_SELECTED)
    unpublished = replace(
        state,
        memberships=[replace(state.memberships[0], published_at=None)],
    )
    assert "menunggu pengumuman" in status_text(unpublished)
    member: MembershipInfo = replace(
        state.memberships[0], purchase_deadline=DEADLINE
    )
    before = replace(state, memberships=[member], now=DEADLINE - timedelta(days=1))
    assert next_action(before).startswith("beli pelatihan pertamamu sebelum 29 Sep")
    after = replace(before, now=DEADLINE)
    assert "dicabut" in next_action(after)
    assert "lolos, lalu dicabut" in status_text(after)
    _fits(status_text(after))
