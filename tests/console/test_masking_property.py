"""Property: whatever the parsers accept, typed in any spacing, is masked in the
ticket page and its JSON for an agent who has not claimed the ticket."""

from __future__ import annotations

import itertools
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.policy.validation import parse_date
from tests.console.conftest import Console
from tests.unit.test_personal_data import (
    kks,
    niks,
    phones,
    with_spacing,
    written_dates,
)

_numbers = itertools.count(1)
TYPED = st.one_of(
    st.one_of(niks(), kks()).flatmap(with_spacing),
    phones().map(lambda phone: (phone[1], phone[0])),
    written_dates().map(lambda written: ("", written)),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(TYPED)
def test_typed_personal_data_is_masked_in_the_page_and_json(
    console: Console, typed: tuple[str, str]
) -> None:
    digits, text = typed
    if not hasattr(console, "_andi"):
        console._andi = console.login(console.agent("andi"))  # type: ignore[attr-defined]
    agent = console._andi  # type: ignore[attr-defined]
    address = f"+628129{next(_numbers):07d}"
    ticket = console.ticket(address=address, texts=(f"ini data saya {text} ya",))
    page = console.get(agent, f"/console/tickets/{ticket.id}").text
    api = console.get(agent, f"/console/api/tickets/{ticket.id}")
    [turn] = api.json()["turns"]
    for shown in (turn["text"], page, api.text):
        if digits:
            assert digits not in re.sub(r"\D", "", shown), (text, turn["text"])
    assert parse_date(turn["text"]) is None, (text, turn["text"])
    assert turn["text"].startswith("ini data saya ") and turn["text"].endswith(" ya")
