"""Fuzz every edge a stranger can reach (issue 12, point 12).

At least 10,000 generated bodies in all go to the Telegram webhook (right and
wrong secret), Twilio's inbound and status webhooks (signed with twilio's
RequestValidator, and unsigned or wrongly signed), the console login (with and
without its CSRF token) and the simulator. Each answer must be below 500, and
the logs, the gateway's background loops included, must hold no traceback and
none of the personal data (NIK, phone, e-mail) the bodies carried.

Hypothesis runs derandomized and without its example database, so every run
sends the same bodies (reproducible in CI).
`FUZZ_SCALE` (default 1) multiplies the number of bodies, e.g. FUZZ_SCALE=10
for a longer local run (or 0.1 for a quick one while changing the test).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from tests.fuzz.conftest import Fuzz
from tests.fuzz.strategies import (
    Case,
    login_forms,
    raw_forms,
    simulator_bodies,
    sms_forms,
    telegram_bodies,
)
from tests.gateway.conftest import PUBLIC_BASE_URL, TELEGRAM_SECRET, TWILIO_TOKEN

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
BODIES = {
    "telegram": 2500,
    "sms_inbound": 2000,
    "sms_status": 1500,
    "login": 2000,
    "simulator": 2000,
}
"""Bodies per edge: 10,000 in all."""
DRAIN_SECONDS = 120.0
"""Limit on handling what one edge stored (a hang, not a slow machine)."""

FORM = "application/x-www-form-urlencoded"


def bodies(edge: str) -> int:
    """The number of bodies this run sends to an edge."""
    return max(1, round(BODIES[edge] * SCALE))


def fuzz_settings(edge: str) -> Any:
    """Hypothesis settings: one example per body, derandomized, no example
    database, no deadline."""
    return settings(
        max_examples=bodies(edge),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def leaks(values: Iterable[str], logged: str) -> list[str]:
    """The values found in the logs as a whole word (not inside a longer id).

    A plain substring search first (fast, in C) and the word-boundary regex
    only on a hit: thousands of values against all the logs at the end of each
    edge would otherwise take minutes."""
    return sorted(
        value
        for value in values
        if value in logged
        and re.search(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])", logged)
    )


def check(fuzz: Fuzz, case: Case, send: Callable[[], Any]) -> None:
    """Send one body: no 5xx, no traceback, none of its personal data logged."""
    mark = len(fuzz.logs.lines)
    response = send()
    fuzz.sent += 1
    fuzz.personal.update(case.personal)
    assert response.status_code < 500, (response.status_code, response.text[:200])
    logged = fuzz.logs.since(mark)
    assert not fuzz.logs.tracebacks, fuzz.logs.tracebacks[0]
    leaked = leaks(case.personal, logged)
    assert not leaked, (leaked, logged[-500:])


def check_background(fuzz: Fuzz, sent_before: int, edge: str) -> None:
    """After an edge's run: every example sent; then the worker and the outbox
    handle everything stored (Rasa turns, replies), and their logs hold no
    traceback and no personal data either."""
    assert fuzz.sent - sent_before >= bodies(edge)
    left = fuzz.drain(DRAIN_SECONDS)
    assert not fuzz.logs.tracebacks, fuzz.logs.tracebacks[0]
    leaked = leaks(fuzz.personal, "\n".join(fuzz.logs.lines))
    assert not leaked, leaked[:5]
    assert not left, f"{left} messages or replies not handled in {DRAIN_SECONDS} s"


def _telegram(fuzz: Fuzz, case: Case, right_secret: bool) -> None:
    secret = TELEGRAM_SECRET if right_secret else "wrong-" + TELEGRAM_SECRET
    headers = {
        "Content-Type": "application/json",
        "X-Telegram-Bot-Api-Secret-Token": secret,
    }
    check(
        fuzz,
        case,
        lambda: fuzz.request(
            "POST", "/telegram/webhook", content=case.body, headers=headers
        ),
    )


def test_telegram_webhook(fuzz: Fuzz) -> None:
    before = fuzz.sent

    @fuzz_settings("telegram")
    @given(case=telegram_bodies(), right_secret=st.booleans())
    def run(case: Case, right_secret: bool) -> None:
        _telegram(fuzz, case, right_secret)

    run()
    check_background(fuzz, before, "telegram")


def _twilio(fuzz: Fuzz, path: str, case: Case, signature: str) -> None:
    validator = RequestValidator(TWILIO_TOKEN)
    if case.fields:
        signed = validator.compute_signature(PUBLIC_BASE_URL + path, case.fields)
        headers = {"Content-Type": FORM}
        if signature == "valid":
            headers["X-Twilio-Signature"] = signed
        elif signature == "wrong":
            headers["X-Twilio-Signature"] = signed[::-1]
        check(
            fuzz,
            case,
            lambda: fuzz.request("POST", path, data=case.fields, headers=headers),
        )
    else:
        headers = {"Content-Type": FORM, "X-Twilio-Signature": "x" * 28}
        check(
            fuzz,
            case,
            lambda: fuzz.request("POST", path, content=case.body, headers=headers),
        )


SIGNATURES = st.sampled_from(["valid", "valid", "wrong", "missing"])


def test_sms_inbound_webhook(fuzz: Fuzz) -> None:
    before = fuzz.sent

    @fuzz_settings("sms_inbound")
    @given(case=st.one_of(sms_forms(), raw_forms()), signature=SIGNATURES)
    def run(case: Case, signature: str) -> None:
        _twilio(fuzz, "/sms/inbound", case, signature)

    run()
    check_background(fuzz, before, "sms_inbound")


def test_sms_status_webhook(fuzz: Fuzz) -> None:
    before = fuzz.sent

    @fuzz_settings("sms_status")
    @given(case=st.one_of(sms_forms(status=True), raw_forms()), signature=SIGNATURES)
    def run(case: Case, signature: str) -> None:
        _twilio(fuzz, "/sms/status", case, signature)

    run()
    check_background(fuzz, before, "sms_status")


def _login(fuzz: Fuzz, token: str, case: Case, with_token: bool, kind: str) -> None:
    headers = {"Origin": "https://testserver"}
    if with_token:
        headers["Cookie"] = f"console_login={token}"
    fuzz.client.cookies.clear()
    if case.fields:
        fields = {**case.fields, **({"csrf": token} if with_token else {})}
        send = lambda: fuzz.request(  # noqa: E731
            "POST",
            "/console/login",
            data=fields,
            headers=headers,
            follow_redirects=False,
        )
    else:
        headers["Content-Type"] = kind
        send = lambda: fuzz.request(  # noqa: E731
            "POST",
            "/console/login",
            content=case.body,
            headers=headers,
            follow_redirects=False,
        )
    check(fuzz, case, send)


def test_console_login(fuzz: Fuzz) -> None:
    before = fuzz.sent
    form = fuzz.request("GET", "/console/login")
    token = form.cookies["console_login"]
    fuzz.client.cookies.clear()

    @fuzz_settings("login")
    @given(
        case=st.one_of(login_forms(), raw_forms()),
        with_token=st.booleans(),
        content_type=st.sampled_from([FORM, "multipart/form-data; boundary=x", ""]),
    )
    def run(case: Case, with_token: bool, content_type: str) -> None:
        _login(fuzz, token, case, with_token, content_type)

    run()
    check_background(fuzz, before, "login")


def _simulator(fuzz: Fuzz, case: Case, origin: str | None, cursor: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if origin:
        headers["Origin"] = origin
    check(
        fuzz,
        case,
        lambda: fuzz.request(
            "POST", "/simulator/api/send", content=case.body, headers=headers
        ),
    )
    if cursor is not None:
        read = fuzz.request(
            "GET",
            "/simulator/api/messages",
            params={"channel": "sms", "user": "andi", "after": cursor},
        )
        assert read.status_code < 500


def test_simulator(fuzz: Fuzz) -> None:
    before = fuzz.sent

    @fuzz_settings("simulator")
    @given(
        case=simulator_bodies(),
        origin=st.sampled_from([None, PUBLIC_BASE_URL, "http://evil.example"]),
        # now and then read the chat back, from an odd cursor (a read renders up
        # to 200 messages: every time would be most of the run)
        cursor=st.one_of(st.none(), st.none(), st.none(), st.text(max_size=20)),
    )
    def run(case: Case, origin: str | None, cursor: str | None) -> None:
        _simulator(fuzz, case, origin, cursor)

    run()
    check_background(fuzz, before, "simulator")
