"""Sends with an unknown outcome are reconciled before they are repeated.

The real twilio and python-telegram-bot clients talk to local fakes of their
APIs: a Twilio send that timed out after Twilio accepted it is adopted (looked up
through the REST API), one Twilio never got is sent again, one whose result was
never recorded (a crash) is not sent twice; a Telegram send in doubt is looked
up in the chat (`bot.channels.telegram_lookup`), counting from the last reply
known to have arrived or the person's own message (the fake numbers both in one
count per chat), so also the first reply of a chat: found when it arrived, sent
once when it provably did not, and not repeated but counted when that cannot
be told (the person wrote more than the probes reach); one whose connection
was refused is sent again. Delivery statuses that arrive before the
sid is stored are kept in the database and applied by whichever process stores
the sid.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.channels import telegram_lookup
from bot.channels.base import REQUEST_IN_FLIGHT, SMS, TELEGRAM, SendResult
from bot.channels.sms import TwilioSender
from bot.channels.telegram import TelegramSender
from bot.gateway import outbox as outbox_module
from bot.messages.models import EarlyDeliveryStatus
from bot.settings import Settings
from tests.fakes.rasa import FakeRasa
from tests.fakes.telegram_api import FakeTelegramApi
from tests.fakes.twilio_api import FakeTwilioApi
from tests.gateway.conftest import (
    FAST,
    TWILIO_TOKEN,
    Db,
    FakeSender,
    make_settings,
    post_telegram,
    post_twilio,
    running,
    sms_params,
    telegram_update,
    unknown_sends,
    wait_until,
)
from tests.gateway.fake_actions import FakeActionServer

PERSON = "+6281234567890"
SHORT_TIMEOUT = 0.5
"""The senders' HTTP timeout here: the fakes answer stalled calls after 2 s."""


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilioApi]:
    api = FakeTwilioApi(auth_token=TWILIO_TOKEN).start()
    yield api
    api.stop()


@pytest.fixture
def telegram_api() -> Iterator[FakeTelegramApi]:
    api = FakeTelegramApi(same_port=True).start()
    yield api
    api.stop()


@pytest.fixture
def provider_settings(
    tmp_path: Path,
    rasa: FakeRasa,
    actions: FakeActionServer,
    telegram_api: FakeTelegramApi,
    twilio_api: FakeTwilioApi,
) -> Settings:
    return make_settings(
        tmp_path,
        rasa.url,
        actions_url=actions.url,
        TELEGRAM_TOKEN=telegram_api.token,
        TELEGRAM_API_URL=telegram_api.url,
        TWILIO_API_URL=twilio_api.url,
    )


@pytest.fixture
def provider_db(provider_settings: Settings) -> Iterator[Db]:
    database = Db(provider_settings.database_url)
    yield database
    database.close()


def sms_sender(settings: Settings) -> dict[str, Any]:
    """The real Twilio sender, with a short HTTP timeout."""
    return {SMS: TwilioSender(settings, timeout=SHORT_TIMEOUT)}


def telegram_sender(settings: Settings) -> dict[str, Any]:
    """The real Telegram sender, with a short HTTP timeout."""
    return {TELEGRAM: TelegramSender(settings, timeout=SHORT_TIMEOUT)}


def final(db: Db) -> bool:
    """Every outbox row has left "pending"."""
    rows = db.outbox()
    return bool(rows) and all(row.status != "pending" for row in rows)


def halo_settled(
    settings: Settings, db: Db, api: FakeTelegramApi
) -> tuple[int, dict[str, int]]:
    """The person writes "halo" in chat 4242 (its id from the fake's count) and
    the reply, through the real Telegram sender, is settled: the person's
    message id and the unknown-outcome counters."""
    with running(settings, senders=telegram_sender(settings)) as client:
        asked = api.person_writes(4242, "halo")
        post_telegram(client, telegram_update(1, 4242, "halo", message_id=asked))
        wait_until(lambda: final(db), what="the reply to be settled")
        return asked, unknown_sends(client)


def crash_before_the_record(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the outbox "die" between a send and storing its result once for each
    item put in the returned list (the row keeps its send-started mark)."""
    original = outbox_module.OutboxSender._finish
    crashes: list[int] = []

    async def crash_once(self: Any, *args: Any) -> None:
        if crashes:
            crashes.pop()
            raise RuntimeError("the process died before the commit")
        await original(self, *args)

    monkeypatch.setattr(outbox_module.OutboxSender, "_finish", crash_once)
    return crashes


def test_a_twilio_send_that_timed_out_after_acceptance_is_adopted(
    provider_settings: Settings, provider_db: Db, twilio_api: FakeTwilioApi
) -> None:
    adopted_after_timeout(provider_settings, provider_db, twilio_api)


def test_a_twilio_send_that_timed_out_is_adopted_on_postgres(
    tmp_path: Path,
    rasa: FakeRasa,
    actions: FakeActionServer,
    twilio_api: FakeTwilioApi,
    postgres_url: str,
) -> None:
    settings = make_settings(
        tmp_path,
        rasa.url,
        database_url=postgres_url,
        actions_url=actions.url,
        TWILIO_API_URL=twilio_api.url,
    )
    database = Db(postgres_url)
    try:
        adopted_after_timeout(settings, database, twilio_api)
    finally:
        database.close()


def adopted_after_timeout(
    provider_settings: Settings, provider_db: Db, twilio_api: FakeTwilioApi
) -> None:
    """Twilio accepts the SMS but answers after the client gave up."""
    twilio_api.stall_next(1, seconds=2.0)
    with running(provider_settings, senders=sms_sender(provider_settings)) as client:
        post_twilio(client, "/sms/inbound", sms_params("SM" + "1" * 32, PERSON, "halo"))
        wait_until(lambda: final(provider_db), what="the reply to be settled")
        counters = unknown_sends(client)
    [message] = twilio_api.messages
    assert len(twilio_api.sent) == 1, "the SMS went out twice"
    [row] = provider_db.outbox()
    assert (row.status, row.provider_message_id) == ("sent", message["sid"])
    assert row.reconciled == "found"
    lookup = twilio_api.lookups[0]
    assert (lookup["To"], lookup["From"]) == (PERSON, "+15550001111")
    assert "DateSent>" in lookup
    assert counters["unknown"] == 1 and counters["found"] == 1


def test_a_twilio_send_that_never_arrived_is_sent_again(
    provider_settings: Settings,
    provider_db: Db,
    twilio_api: FakeTwilioApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(TwilioSender, "request_in_flight", 1.0)  # not 30 s here
    twilio_api.lose_next(1, seconds=2.0)
    with running(provider_settings, senders=sms_sender(provider_settings)) as client:
        post_twilio(client, "/sms/inbound", sms_params("SM" + "2" * 32, PERSON, "halo"))
        wait_until(lambda: final(provider_db), what="the reply to be settled")
        counters = unknown_sends(client)
    wait_until(lambda: len(twilio_api.calls) == 2, what="the lost call's record")
    assert len(twilio_api.sent) == 1
    [row] = provider_db.outbox()
    assert (row.status, row.provider_message_id) == ("sent", twilio_api.sent[0].sid)
    assert row.reconciled == "resent"
    assert twilio_api.lookups, "sent again without looking first"
    assert counters["unknown"] == 1 and counters["resent"] == 1


def test_a_twilio_send_still_on_its_way_when_looked_up_is_not_sent_twice(
    provider_settings: Settings,
    provider_db: Db,
    twilio_api: FakeTwilioApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twilio had not handled the request yet when the sender gave up and
    asked: its list was empty then, which proves nothing until the request
    cannot still land (`TwilioSender.request_in_flight`, 4 s here); looked up
    again then, the message is there and adopted."""
    monkeypatch.setattr(TwilioSender, "request_in_flight", 4.0)
    twilio_api.slow_next(1, seconds=2.0)  # handled (listed) 2 s after it came
    with running(provider_settings, senders=sms_sender(provider_settings)) as client:
        post_twilio(client, "/sms/inbound", sms_params("SM" + "5" * 32, PERSON, "halo"))
        wait_until(lambda: final(provider_db), what="the reply to be settled")
        counters = unknown_sends(client)
    assert len(twilio_api.sent) == 1, "sent again while the first was on its way"
    [row] = provider_db.outbox()
    assert (row.status, row.reconciled) == ("sent", "found")
    assert len(twilio_api.lookups) >= 2, "the empty list was taken as proof"
    assert counters["unknown"] == 1 and counters["found"] == 1


def test_an_earlier_sms_with_the_same_text_is_no_proof_the_new_one_is_absent(
    provider_settings: Settings,
    provider_db: Db,
    twilio_api: FakeTwilioApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The person had the same answer a moment ago (recorded with its id):
    while the new request is still on its way, Twilio lists only that one. No
    fresh id proves nothing either until the request cannot still land."""
    monkeypatch.setattr(TwilioSender, "request_in_flight", 4.0)
    with running(provider_settings, senders=sms_sender(provider_settings)) as client:
        post_twilio(client, "/sms/inbound", sms_params("SM" + "6" * 32, PERSON, "halo"))
        wait_until(lambda: final(provider_db), what="the first reply to be settled")
        twilio_api.slow_next(1, seconds=2.0)  # handled (listed) 2 s after it came
        post_twilio(client, "/sms/inbound", sms_params("SM" + "7" * 32, PERSON, "halo"))
        wait_until(
            lambda: len(provider_db.outbox()) == 2 and final(provider_db),
            what="the second reply to be settled",
        )
        counters = unknown_sends(client)
    first, second = provider_db.outbox()
    assert first.body == second.body, "the same text twice"
    assert len(twilio_api.sent) == 2, "sent again while the second was on its way"
    assert (second.status, second.reconciled) == ("sent", "found")
    assert second.provider_message_id == twilio_api.sent[1].sid
    assert counters["unknown"] == 1 and counters["found"] == 1


def test_a_crash_between_the_send_and_its_record_sends_one_sms(
    provider_settings: Settings,
    provider_db: Db,
    twilio_api: FakeTwilioApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crashes = crash_before_the_record(monkeypatch)
    crashes.append(1)
    options = replace(FAST, lease_seconds=1.0)  # the dead owner's lease runs out
    senders = sms_sender(provider_settings)
    with running(provider_settings, options, senders=senders) as client:
        post_twilio(client, "/sms/inbound", sms_params("SM" + "3" * 32, PERSON, "halo"))
        wait_until(lambda: final(provider_db), what="the reply to be settled")
        counters = unknown_sends(client)
    assert not crashes, "the crash was not simulated"
    assert len(twilio_api.sent) == 1, "the SMS went out twice"
    [row] = provider_db.outbox()
    assert (row.status, row.provider_message_id) == ("sent", twilio_api.sent[0].sid)
    assert counters["found"] == 1


def test_a_simulator_reply_whose_result_was_lost_is_sent_again_at_once(
    provider_settings: Settings, provider_db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator's page shows only replies stored as sent, so one whose
    result was lost never showed: it is sent again, without waiting (a send in
    this process cannot be on its way)."""
    crashes = crash_before_the_record(monkeypatch)
    crashes.append(1)
    options = replace(FAST, lease_seconds=1.0)  # the dead owner's lease runs out
    with running(provider_settings, options) as client:
        response = client.post(
            "/simulator/api/send",
            json={"channel": TELEGRAM, "user": "andi", "text": "halo"},
        )
        assert response.status_code == 200, response.text
        wait_until(lambda: final(provider_db), what="the reply to be settled")
        counters = unknown_sends(client)
    assert not crashes, "the crash was not simulated"
    [row] = provider_db.outbox()
    assert (row.status, row.reconciled) == ("delivered", "resent")  # shown
    assert counters["unknown"] == 1 and counters["resent"] == 1


def test_a_telegram_reply_past_more_messages_than_probed_is_not_repeated(
    provider_settings: Settings,
    provider_db: Db,
    telegram_api: FakeTelegramApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The person wrote more than the lookup probes while the outcome was
    unknown: it cannot be told, so the reply is not sent again, but counted."""

    async def lost_then_chatty(self: Any, address: str, body: dict[str, Any]) -> Any:
        for _ in range(telegram_lookup.PROBES + 1):
            telegram_api.person_writes(address, "halo?")
        raise RuntimeError("no answer")

    monkeypatch.setattr(TelegramSender, "send", lost_then_chatty)
    asked, counters = halo_settled(provider_settings, provider_db, telegram_api)
    assert telegram_api.calls_to("sendMessage") == []
    [row] = provider_db.outbox()
    assert (row.status, row.reconciled) == ("unknown", "given_up")
    assert counters["unknown"] == 1 and counters["given_up"] == 1


def test_a_telegram_send_whose_connection_was_refused_is_repeated(
    provider_settings: Settings, provider_db: Db, telegram_api: FakeTelegramApi
) -> None:
    telegram_api.stop()  # nothing listens: the connection is refused
    senders = telegram_sender(provider_settings)
    with running(provider_settings, senders=senders) as client:
        post_telegram(client, telegram_update(1, 4242, "halo"))
        wait_until(
            lambda: provider_db.outbox() and provider_db.outbox()[0].attempts >= 1,
            what="a refused attempt",
        )
        telegram_api.start()
        wait_until(lambda: final(provider_db), what="the reply to be settled")
        counters = unknown_sends(client)
    [row] = provider_db.outbox()
    assert row.status == "sent" and row.reconciled is None
    assert len(telegram_api.calls_to("sendMessage")) == 1
    assert counters["unknown"] == 0


class GatedSender(FakeSender):
    """A FakeSender whose sends answer only once `gate` is set (at most 60 s)."""

    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.gate = threading.Event()

    async def send(self, address: str, body: dict[str, Any]) -> SendResult:
        """Record the body, then wait for the gate."""
        result = await super().send(address, body)
        await asyncio.to_thread(self.gate.wait, 60)
        return result


def status_applied_by_another_process(settings: Settings, db: Db) -> None:
    """A callback reaches a second process before the first stores the sid."""
    sms = GatedSender(SMS)  # sid "sms-1" stored once the test opens the gate
    with running(settings, senders={SMS: sms}) as first:
        post_twilio(first, "/sms/inbound", sms_params("SM" + "4" * 32, PERSON, "halo"))
        wait_until(lambda: sms.sent, what="the send to start")
        with running(settings, senders={}) as second:  # another gateway process
            for status in ("sent", "delivered"):
                callback = {"MessageSid": "sms-1", "MessageStatus": status}
                assert post_twilio(second, "/sms/status", callback).status_code == 200
            assert db.outbox()[0].status == "pending", "the send was still going on"
        sms.gate.set()
        wait_until(lambda: db.outbox()[0].status == "delivered", what="the status")
    [row] = db.outbox()
    assert (row.provider_message_id, row.delivery_status) == ("sms-1", "delivered")
    assert db.all(EarlyDeliveryStatus) == []


def test_a_status_before_the_sid_is_applied_by_another_process(
    settings: Settings, rasa: FakeRasa, db: Db
) -> None:
    status_applied_by_another_process(settings, db)


def test_a_status_before_the_sid_is_applied_by_another_process_on_postgres(
    tmp_path: Path, rasa: FakeRasa, actions: FakeActionServer, postgres_url: str
) -> None:
    settings = make_settings(
        tmp_path, rasa.url, database_url=postgres_url, actions_url=actions.url
    )
    database = Db(postgres_url)
    try:
        status_applied_by_another_process(settings, database)
    finally:
        database.close()


def _answered(db: Db, count: int) -> bool:
    rows = db.outbox()
    return len(rows) == count and all(row.status != "pending" for row in rows)


def _converse(
    client: Any, db: Db, api: FakeTelegramApi, texts: list[str], cut: list[int]
) -> None:
    """The person writes each text (its id from the fake's count of the chat)
    and waits for its reply; `cut` is filled just before the last text, so the
    fault lands on the reply to it."""
    for number, text in enumerate(texts, start=1):
        if number == len(texts):
            cut.append(1)
        asked = api.person_writes(4242, text)
        post_telegram(client, telegram_update(number, 4242, text, message_id=asked))
        wait_until(lambda n=number: _answered(db, n), what=f"reply {number}")


@pytest.mark.parametrize("texts", [["halo"], ["halo", "lagi"]], ids=["first", "later"])
def test_a_telegram_reply_that_arrived_before_a_crash_is_found_not_resent(
    provider_settings: Settings,
    provider_db: Db,
    telegram_api: FakeTelegramApi,
    monkeypatch: pytest.MonkeyPatch,
    texts: list[str],
) -> None:
    """The reply reaches Telegram and the process dies before recording it; for
    the first reply of the chat too, counted from the person's message."""
    crashes = crash_before_the_record(monkeypatch)
    options = replace(FAST, lease_seconds=1.0)  # the dead owner's lease runs out
    senders = telegram_sender(provider_settings)
    with running(provider_settings, options, senders=senders) as client:
        _converse(client, provider_db, telegram_api, texts, crashes)
        counters = unknown_sends(client)
    assert not crashes, "the crash was not simulated"
    chat = telegram_api.messages_in(4242)
    assert [m["text"] for m in chat] == [
        said for text in texts for said in (text, f"Anda menulis: {text}")
    ], "sent once, and the probe changed nothing"
    last = provider_db.outbox()[-1]
    assert (last.status, last.reconciled) == ("sent", "found")
    assert last.provider_message_id == str(chat[-1]["message_id"])
    assert counters["unknown"] == 1 and counters["found"] == 1


@pytest.mark.parametrize(
    ("fault", "in_flight"),
    [("stall", REQUEST_IN_FLIGHT), ("slow", 4.0)],
    ids=["taken-answered-late", "still-on-its-way-when-asked"],
)
def test_a_first_telegram_reply_cut_off_is_found_not_sent_twice(
    provider_settings: Settings,
    provider_db: Db,
    telegram_api: FakeTelegramApi,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    in_flight: float,
) -> None:
    """The sender gives up waiting (0.5 s) on a reply Telegram takes. "stall":
    Telegram has it at once and answers late: the chat is asked and the reply
    found. "slow": Telegram handles it 2 s after it came, so the id after the
    person's message is still empty when first asked, which proves nothing
    until the request cannot still land (4 s here): asked again then, the
    reply is there and adopted."""
    monkeypatch.setattr(TelegramSender, "request_in_flight", in_flight)
    telegram_api.fail_next(1, error=fault, delay=2.0)
    asked, counters = halo_settled(provider_settings, provider_db, telegram_api)
    assert len(telegram_api.calls_to("sendMessage")) == 1, "sent twice"
    [row] = provider_db.outbox()
    assert (row.status, row.reconciled) == ("sent", "found")
    assert row.provider_message_id == str(asked + 1)
    assert counters["unknown"] == 1 and counters["found"] == 1


@pytest.mark.parametrize("texts", [["halo"], ["halo", "lagi"]], ids=["first", "later"])
def test_a_telegram_reply_that_never_left_is_proven_absent_and_sent_once(
    provider_settings: Settings,
    provider_db: Db,
    telegram_api: FakeTelegramApi,
    monkeypatch: pytest.MonkeyPatch,
    texts: list[str],
) -> None:
    original = TelegramSender.send
    fails: list[int] = []

    async def lost_once(self: Any, address: str, body: dict[str, Any]) -> Any:
        if fails:  # the process stalled before the request: nothing left
            fails.pop()
            raise RuntimeError("no answer")
        return await original(self, address, body)

    monkeypatch.setattr(TelegramSender, "send", lost_once)
    monkeypatch.setattr(TelegramSender, "request_in_flight", 1.0)  # not 30 s here
    senders = telegram_sender(provider_settings)
    with running(provider_settings, senders=senders) as client:
        _converse(client, provider_db, telegram_api, texts, fails)
        counters = unknown_sends(client)
    assert not fails, "the lost send was not simulated"
    assert [m["text"] for m in telegram_api.messages_in(4242)] == [
        said for text in texts for said in (text, f"Anda menulis: {text}")
    ]
    last = provider_db.outbox()[-1]
    assert (last.status, last.reconciled) == ("sent", "resent")
    assert counters["unknown"] == 1 and counters["resent"] == 1


def test_a_telegram_reply_found_with_an_id_another_chat_has_is_adopted(
    provider_settings: Settings,
    provider_db: Db,
    telegram_api: FakeTelegramApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Message ids count per chat: the id found in this chat may be stored on a
    reply of another chat already; it is still this reply's, not a reason to
    send it again."""
    crashes = crash_before_the_record(monkeypatch)
    options = replace(FAST, lease_seconds=1.0)  # the dead owner's lease runs out
    senders = telegram_sender(provider_settings)
    with running(provider_settings, options, senders=senders) as client:
        for number, chat in enumerate((4242, 4343), start=1):
            if chat == 4343:
                crashes.append(1)  # its reply arrives, its record is lost
            asked = telegram_api.person_writes(chat, "halo")
            post_telegram(client, telegram_update(number, chat, "halo", asked))
            wait_until(lambda n=number: _answered(provider_db, n), what="the reply")
        counters = unknown_sends(client)
    assert not crashes, "the crash was not simulated"
    assert [m["text"] for m in telegram_api.messages_in(4343)] == [
        "halo", "Anda menulis: halo",
    ], "sent once"  # fmt: skip
    first, second = provider_db.outbox()
    assert first.provider_message_id == second.provider_message_id == "2"
    assert (second.status, second.reconciled) == ("sent", "found")
    assert counters["found"] == 1 and counters["resent"] == 0
