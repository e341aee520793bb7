"""A provider's "no such message" is proof only once the request cannot still
land (`bot.gateway.outbox.in_flight_for`, `Lookup.request_in_flight`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.channels.base import REQUEST_IN_FLIGHT
from bot.channels.simulator import SimulatorSender
from bot.channels.sms import TwilioSender
from bot.channels.telegram import TelegramSender
from bot.db import utcnow
from bot.gateway.outbox import in_flight_for


@pytest.mark.parametrize("sender", [TwilioSender, TelegramSender])
def test_a_request_to_a_provider_may_land_for_a_while(sender: type) -> None:
    just_now = utcnow()
    assert REQUEST_IN_FLIGHT - 5 < in_flight_for(sender, just_now) <= REQUEST_IN_FLIGHT
    ten_ago = utcnow() - timedelta(seconds=10)
    assert 0 < in_flight_for(sender, ten_ago) <= REQUEST_IN_FLIGHT - 10
    long_ago = utcnow() - timedelta(seconds=REQUEST_IN_FLIGHT + 1)
    assert in_flight_for(sender, long_ago) == 0


def test_a_send_in_this_process_is_never_in_flight() -> None:
    assert in_flight_for(SimulatorSender(), utcnow()) == 0


def test_a_sender_that_does_not_say_gets_the_whole_window() -> None:
    """The safe side: waiting longer delays a resend, a shorter wait may
    send a message twice."""
    assert in_flight_for(object(), utcnow()) > REQUEST_IN_FLIGHT - 5
