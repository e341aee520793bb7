"""Twilio webhooks (signatures signed with twilio's RequestValidator) and the
real Twilio client sending through a local fake of the REST API."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from twilio.request_validator import RequestValidator

from bot.channels.base import SMS, Unauthorized
from bot.channels.sms import (
    MalformedRequestError,
    SmsChannel,
    StatusUpdate,
    TwilioSender,
    parse_inbound,
    parse_status,
)
from bot.settings import Settings, load_settings
from tests.fakes.twilio_api import FakeTwilioApi

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
FROM_NUMBER = "+15005550006"
BASE_URL = "https://gateway.example.org"
INBOUND_URL = BASE_URL + "/sms/inbound"
STATUS_URL = BASE_URL + "/sms/status"
USER = "+6281234567890"


def make_settings(
    api_url: str = "https://api.twilio.com", **overrides: str
) -> Settings:
    env = {
        "PRAKERJA_ENV": "test",
        "PSEUDONYM_KEY": "test-key",
        "PUBLIC_BASE_URL": BASE_URL,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_URL": api_url,
    }
    env.update(overrides)
    return load_settings(env)


def inbound_params(body: str = "Halo", **extra: str) -> dict[str, str]:
    """The form fields Twilio posts for an incoming SMS."""
    params = {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": "SM" + "a" * 32,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": "SM" + "a" * 32,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "ID",
        "To": FROM_NUMBER,
        "ToZip": "",
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": "SM" + "a" * 32,
        "AccountSid": ACCOUNT_SID,
        "From": USER,
        "ApiVersion": "2010-04-01",
    }
    params.update(extra)
    return params


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


# --- inbound webhook ---------------------------------------------------------------


def test_signed_inbound_is_parsed() -> None:
    params = inbound_params("Cek syarat")
    message = parse_inbound(
        make_settings(), INBOUND_URL, params, sign(INBOUND_URL, params)
    )
    assert message.channel == SMS
    assert message.provider_id == "SM" + "a" * 32
    assert message.address == USER
    assert message.text == "Cek syarat"
    assert message.event is None and message.payload is None


def test_signature_with_explicit_port_is_accepted() -> None:
    params = inbound_params()
    signature = sign("https://gateway.example.org:443/sms/inbound", params)
    assert parse_inbound(make_settings(), INBOUND_URL, params, signature).text == "Halo"


@pytest.mark.parametrize(
    ("url", "changes"),
    [
        (INBOUND_URL, {"Body": "STOP"}),
        (INBOUND_URL, {"From": "+6281111111111"}),
        (INBOUND_URL, {"Extra": "1"}),
        ("http://gateway.example.org/sms/inbound", {}),
        (BASE_URL + "/sms/status", {}),
        ("https://evil.example.org/sms/inbound", {}),
    ],
)
def test_tampered_request_is_unauthorised(url: str, changes: dict[str, str]) -> None:
    params = inbound_params()
    signature = sign(INBOUND_URL, params)
    with pytest.raises(Unauthorized):
        parse_inbound(make_settings(), url, {**params, **changes}, signature)


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl"])
def test_missing_or_wrong_signature_is_unauthorised(signature: str | None) -> None:
    with pytest.raises(Unauthorized):
        parse_inbound(make_settings(), INBOUND_URL, inbound_params(), signature)


@pytest.mark.parametrize("signature", ["zañ", "\u00ff" * 28, "ü"])
def test_a_signature_that_is_not_ascii_is_unauthorised(signature: str) -> None:
    """A header Starlette decoded as Latin-1 is refused, not a server error."""
    params = inbound_params()
    with pytest.raises(Unauthorized):
        parse_inbound(make_settings(), INBOUND_URL, params, signature)


def test_signature_with_another_token_is_unauthorised() -> None:
    params = inbound_params()
    with pytest.raises(Unauthorized):
        parse_inbound(
            make_settings(), INBOUND_URL, params, sign(INBOUND_URL, params, "other")
        )


def test_without_auth_token_everything_is_unauthorised() -> None:
    params = inbound_params()
    settings = make_settings(TWILIO_AUTH_TOKEN="")
    with pytest.raises(Unauthorized):
        parse_inbound(settings, INBOUND_URL, params, sign(INBOUND_URL, params, ""))


@pytest.mark.parametrize(
    ("sender", "address"),
    [
        ("+6281234567890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("+14155550100", "+14155550100"),
    ],
)
def test_sender_is_normalised(sender: str, address: str) -> None:
    params = inbound_params(From=sender)
    message = parse_inbound(
        make_settings(), INBOUND_URL, params, sign(INBOUND_URL, params)
    )
    assert message.address == address


def test_older_sms_sid_field_is_accepted() -> None:
    params = inbound_params()
    del params["MessageSid"]
    message = parse_inbound(
        make_settings(), INBOUND_URL, params, sign(INBOUND_URL, params)
    )
    assert message.provider_id == params["SmsSid"]


def test_signed_request_without_sid_is_malformed() -> None:
    params = inbound_params()
    for name in ("MessageSid", "SmsSid", "SmsMessageSid"):
        del params[name]
    with pytest.raises(MalformedRequestError):
        parse_inbound(make_settings(), INBOUND_URL, params, sign(INBOUND_URL, params))


def test_mms_photo_becomes_an_event() -> None:
    media = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    params = inbound_params(
        "", NumMedia="1", MediaUrl0=media, MediaContentType0="image/jpeg"
    )
    message = parse_inbound(
        make_settings(), INBOUND_URL, params, sign(INBOUND_URL, params)
    )
    assert message.event == {
        "type": "photo",
        "url": media,
        "content_type": "image/jpeg",
    }
    result = SmsChannel().interpret(message, {}, opted_out=False)
    assert result.rasa_text is not None and result.rasa_text.startswith("/inform{")
    assert result.rasa_metadata["event"]["url"] == media


# --- status callback ---------------------------------------------------------------


def status_params(status: str, **extra: str) -> dict[str, str]:
    params = {
        "SmsSid": "SM" + "b" * 32,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": USER,
        "MessageSid": "SM" + "b" * 32,
        "AccountSid": ACCOUNT_SID,
        "From": FROM_NUMBER,
        "ApiVersion": "2010-04-01",
    }
    params.update(extra)
    return params


def test_delivered_status_is_parsed() -> None:
    params = status_params("delivered")
    update = parse_status(make_settings(), STATUS_URL, params, sign(STATUS_URL, params))
    assert update == StatusUpdate("SM" + "b" * 32, "delivered", None)


def test_undelivered_status_carries_the_error_code() -> None:
    params = status_params("undelivered", ErrorCode="30005")
    update = parse_status(make_settings(), STATUS_URL, params, sign(STATUS_URL, params))
    assert update == StatusUpdate("SM" + "b" * 32, "undelivered", "30005")


def test_status_with_bad_signature_is_unauthorised() -> None:
    params = status_params("delivered")
    signature = sign(STATUS_URL, params)
    with pytest.raises(Unauthorized):
        parse_status(
            make_settings(),
            STATUS_URL,
            {**params, "MessageStatus": "failed"},
            signature,
        )
    with pytest.raises(Unauthorized):
        parse_status(make_settings(), STATUS_URL, params, None)


# --- sending through the real client and a fake REST API -----------------------------


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as api:
        yield api


@pytest.fixture
def fake(fake_server: FakeTwilioApi) -> Iterator[FakeTwilioApi]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def sender(fake: FakeTwilioApi) -> TwilioSender:
    return TwilioSender(make_settings(fake.url))


async def test_send_reaches_the_rest_api(
    fake: FakeTwilioApi, sender: TwilioSender
) -> None:
    text = "Halo!\n1. Ya\n2. Tidak\nBalas angka pilihanmu."
    result = await sender.send(USER, {"kind": "sms", "text": text})
    assert result.ok and not result.permanent
    assert result.provider_message_id is not None
    assert result.provider_message_id.startswith("SM")
    assert len(result.provider_message_id) == 34
    [call] = fake.calls
    assert call.status == 201 and call.sid == result.provider_message_id
    assert call.account_sid == ACCOUNT_SID
    assert call.params["To"] == USER
    assert call.params["From"] == FROM_NUMBER
    assert call.params["Body"] == text
    assert call.params["StatusCallback"] == BASE_URL + "/sms/status"
    assert call.headers["user-agent"].startswith("twilio-python")
    await sender.close()


async def test_send_keeps_bodies_gsm7(
    fake: FakeTwilioApi, sender: TwilioSender
) -> None:
    await sender.send(USER, {"kind": "sms", "text": "\u201cOke\u201d \U0001f44d"})
    assert fake.sent[0].params["Body"] == '"Oke"'


async def test_rate_limit_asks_to_retry_after(
    fake: FakeTwilioApi, sender: TwilioSender
) -> None:
    fake.fail_next(1, status=429, retry_after=7)
    limited = await sender.send(USER, {"kind": "sms", "text": "Halo"})
    assert not limited.ok and not limited.permanent
    assert limited.retry_after == 7.0
    again = await sender.send(USER, {"kind": "sms", "text": "Halo"})
    assert again.ok
    assert [call.status for call in fake.calls] == [429, 201]


async def test_rate_limit_without_header(
    fake: FakeTwilioApi, sender: TwilioSender
) -> None:
    fake.fail_next(1, status=429)
    result = await sender.send(USER, {"kind": "sms", "text": "Halo"})
    assert not result.ok and not result.permanent and result.retry_after is None


async def test_server_error_is_retryable(
    fake: FakeTwilioApi, sender: TwilioSender
) -> None:
    fake.fail_next(2, status=500)
    for _ in range(2):
        result = await sender.send(USER, {"kind": "sms", "text": "Halo"})
        assert not result.ok and not result.permanent and result.retry_after is None
    assert (await sender.send(USER, {"kind": "sms", "text": "Halo"})).ok


@pytest.mark.parametrize("code", [21610, 21211, 21614, 21408])
async def test_refused_recipient_is_permanent(
    fake: FakeTwilioApi, sender: TwilioSender, code: int
) -> None:
    fake.fail_next(1, status=400, code=code)
    result = await sender.send(USER, {"kind": "sms", "text": "Halo"})
    assert not result.ok and result.permanent
    assert result.error is not None and str(code) in result.error
    assert "628" not in result.error  # no phone number in what gets stored/logged


async def test_wrong_credentials_are_retried_not_dropped(fake: FakeTwilioApi) -> None:
    sender = TwilioSender(make_settings(fake.url, TWILIO_AUTH_TOKEN="wrong"))
    result = await sender.send(USER, {"kind": "sms", "text": "Halo"})
    assert not result.ok and not result.permanent
    assert fake.calls[0].status == 401 and not fake.sent


async def test_slow_api_times_out() -> None:
    with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as slow:  # own server: no stray call
        sender = TwilioSender(make_settings(slow.url), timeout=0.3)
        slow.slow_next(1, seconds=2)
        started = time.monotonic()
        result = await sender.send(USER, {"kind": "sms", "text": "Halo"})
        assert time.monotonic() - started < 1.5
        assert not result.ok and not result.permanent
        assert result.unknown, "no answer: Twilio may have the message"


async def test_unreachable_api_is_retryable() -> None:
    with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as api:
        url = api.url
    sender = TwilioSender(make_settings(url), timeout=2)
    result = await sender.send(USER, {"kind": "sms", "text": "Halo"})
    assert not result.ok and not result.permanent
    assert not result.unknown, "the connection was refused: nothing left"


async def test_concurrent_sends(fake: FakeTwilioApi, sender: TwilioSender) -> None:
    fake.fail_next(1, status=429, retry_after=3)
    results = await asyncio.gather(
        *(sender.send(USER, {"kind": "sms", "text": f"pesan {n}"}) for n in range(12))
    )
    assert sum(r.ok for r in results) == 11
    assert [r.retry_after for r in results if not r.ok] == [3.0]
    assert len({r.provider_message_id for r in results if r.ok}) == 11


async def test_non_sms_body_is_refused(sender: TwilioSender) -> None:
    result = await sender.send(USER, {"kind": "telegram", "text": "Halo"})
    assert not result.ok and result.permanent


async def test_lookup_finds_only_this_body_to_this_number_since_then(
    fake: FakeTwilioApi, sender: TwilioSender
) -> None:
    before = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=5)
    body = {"kind": "sms", "text": "Kode kamu sudah dikirim."}
    sent = await sender.send(USER, body)
    await sender.send(USER, {"kind": "sms", "text": "Pesan lain"})
    await sender.send("+6289999999999", body)
    try:
        found = await sender.lookup(USER, body, before)
        later = await sender.lookup(USER, body, before + timedelta(minutes=10))
    finally:
        await sender.close()
    assert found.error is None and found.ids == (sent.provider_message_id,)
    assert later.error is None and later.ids == ()
    query = fake.lookups[0]
    assert (query["To"], query["From"]) == (USER, FROM_NUMBER)
    assert query["DateSent>"] == before.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_lookup_reports_an_unreachable_api() -> None:
    with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as api:
        url = api.url
    sender = TwilioSender(make_settings(url), timeout=2)
    since = datetime.now(timezone.utc).replace(tzinfo=None)
    result = await sender.lookup(USER, {"kind": "sms", "text": "Halo"}, since)
    assert result.ids == () and result.error is not None
    assert "628" not in result.error


def test_sender_needs_credentials() -> None:
    with pytest.raises(ValueError, match="TWILIO"):
        TwilioSender(make_settings(TWILIO_ACCOUNT_SID=""))
    with pytest.raises(ValueError, match="TWILIO_FROM_NUMBER"):
        TwilioSender(make_settings(TWILIO_FROM_NUMBER=""))


async def test_sends_never_wait_for_the_default_thread_pool(
    fake: FakeTwilioApi, sender: TwilioSender
) -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
    release = threading.Event()
    blocker = loop.run_in_executor(None, release.wait, 10)  # the only thread
    try:
        result = await asyncio.wait_for(
            sender.send(USER, {"kind": "sms", "text": "Halo"}), timeout=5
        )
    finally:
        release.set()
        await blocker
        await sender.close()
    assert result.ok and len(fake.sent) == 1


def test_twilio_request_logs_are_silenced(fake: FakeTwilioApi) -> None:
    logging.getLogger("twilio.http_client").setLevel(logging.NOTSET)
    TwilioSender(make_settings(fake.url))
    assert logging.getLogger("twilio.http_client").level == logging.WARNING

