"""The Telegram channel: parsing real update payloads, interpret/render, sending
through the real python-telegram-bot client to a local fake Bot API."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from telegram import (
    CallbackQuery,
    Chat,
    Contact,
    Document,
    Message,
    PhotoSize,
    Update,
    User,
)
from telegram.error import NetworkError, RetryAfter, TimedOut

from bot.channels.base import Button, InboundMessage, Reply, Unauthorized
from bot.channels.pacing import RateLimiter, make_pacer
from bot.channels.telegram import (
    KEY_PREFIX,
    SECRET_HEADER,
    TelegramChannel,
    TelegramSender,
    _keyboard,
    _message_id,
    make_bot,
    never_arrived,
    parse_webhook,
    retry_after_seconds,
    split_text,
)
from bot.channels.telegram_request import AiohttpRequest
from bot.settings import Settings, load_settings
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramApi

BOT_ID = DEFAULT_TOKEN.split(":")[0]

SECRET = "s3cret-Token_123"
USER = User(424242, "Siti", False)
CHAT = Chat(424242, Chat.PRIVATE)
WHEN = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)
LONG_PAYLOAD = '/inform{"program": "' + "pelatihan-digital-" * 5 + '"}'


def make_settings(tmp_path: Path, **env: str) -> Settings:
    base = {
        "PRAKERJA_ENV": "test",
        "PRAKERJA_VAR_DIR": str(tmp_path),
        "PSEUDONYM_KEY": "test-key",
        "TELEGRAM_TOKEN": DEFAULT_TOKEN,
        "TELEGRAM_SECRET_TOKEN": SECRET,
    }
    return load_settings(base | env)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def fake_api() -> Iterator[FakeTelegramApi]:
    with FakeTelegramApi() as api:
        yield api


def message(**kwargs: Any) -> Message:
    chat = kwargs.pop("chat", CHAT)
    return Message(7, WHEN, chat, from_user=kwargs.pop("from_user", USER), **kwargs)


def body(update: Update) -> bytes:
    return update.to_json().encode()


def headers(secret: str = SECRET) -> dict[str, str]:
    return {SECRET_HEADER: secret, "Content-Type": "application/json"}


def parse(settings: Settings, update: Update) -> InboundMessage | None:
    return parse_webhook(settings, headers(), body(update))


# --- parse_webhook --------------------------------------------------------------


def test_text_message_is_parsed(settings: Settings) -> None:
    inbound = parse(settings, Update(1001, message=message(text="Halo kak")))
    assert inbound == InboundMessage(
        channel="telegram",
        provider_id=f"{BOT_ID}:1001",
        address="424242",
        text="Halo kak",
        user_name="Siti",
        chat_message_id=7,  # the message's id in the chat
    )


@pytest.mark.parametrize("odd", ["7", 7.5, True, -1, 0, 2**63])
def test_a_message_id_of_the_wrong_type_is_value_error(
    settings: Settings, odd: object
) -> None:
    raw = json.loads(body(Update(1002, message=message(text="Halo"))))
    raw["message"]["message_id"] = odd
    with pytest.raises(ValueError):
        parse_webhook(settings, headers(), json.dumps(raw).encode())


@pytest.mark.parametrize(
    "given",
    [None, "", "wrong-secret", SECRET + "x", SECRET.lower()],
)
def test_missing_or_wrong_secret_is_unauthorized(
    settings: Settings, given: str | None
) -> None:
    request_headers = {} if given is None else headers(given)
    with pytest.raises(Unauthorized):
        parse_webhook(
            settings, request_headers, body(Update(1, message=message(text="x")))
        )


def test_no_configured_secret_refuses_everything(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, TELEGRAM_SECRET_TOKEN="")
    with pytest.raises(Unauthorized):
        parse_webhook(settings, headers(""), b"{}")


def test_secret_header_name_is_case_insensitive(settings: Settings) -> None:
    request_headers = {SECRET_HEADER.lower(): SECRET}
    update = Update(2, message=message(text="x"))
    assert parse_webhook(settings, request_headers, body(update)) is not None


def test_non_ascii_secret_is_unauthorized_not_a_crash(settings: Settings) -> None:
    with pytest.raises(Unauthorized):
        parse_webhook(settings, headers("rahasia-é"), b"{}")


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"message": {}}', b"\xff"])
def test_bad_body_is_value_error(settings: Settings, raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_webhook(settings, headers(), raw)


def test_ignored_updates(settings: Settings) -> None:
    group = Chat(-100123, Chat.SUPERGROUP)
    channel = Chat(-100999, Chat.CHANNEL)
    ignored = [
        Update(10, edited_message=message(text="ubah")),
        Update(11, channel_post=Message(1, WHEN, channel, text="pos")),
        Update(12, message=message(text="di grup", chat=group)),
        Update(
            13, callback_query=CallbackQuery("q", USER, "ci", inline_message_id="i")
        ),
    ]
    for update in ignored:
        assert parse(settings, update) is None


def test_photo_takes_the_largest_size(settings: Settings) -> None:
    sizes = (
        PhotoSize("small-id", "small-u", 90, 67, file_size=1200),
        PhotoSize("large-id", "large-u", 1280, 960, file_size=150_000),
        PhotoSize("mid-id", "mid-u", 320, 240, file_size=9000),
    )
    inbound = parse(settings, Update(20, message=message(photo=sizes, caption="KTP")))
    assert inbound is not None
    assert inbound.text == "KTP"
    assert inbound.event == {
        "type": "photo",
        "file_id": "large-id",
        "file_unique_id": "large-u",
        "width": 1280,
        "height": 960,
        "file_size": 150_000,
        "sender_id": USER.id,
    }


def test_image_sent_as_file_counts_as_photo(settings: Settings) -> None:
    document = Document("doc-id", "doc-u", file_name="ktp.jpg", mime_type="image/jpeg")
    inbound = parse(settings, Update(21, message=message(document=document)))
    assert inbound is not None and inbound.event is not None
    assert inbound.event["type"] == "photo"
    assert inbound.event["file_id"] == "doc-id"


def test_contact_is_parsed(settings: Settings) -> None:
    contact = Contact("6281234567890", "Siti", user_id=USER.id)
    inbound = parse(settings, Update(22, message=message(contact=contact)))
    assert inbound is not None
    assert inbound.event == {
        "type": "contact",
        "phone_number": "6281234567890",
        "user_id": USER.id,
        "first_name": "Siti",
        "sender_id": USER.id,
    }


def test_callback_is_parsed(settings: Settings) -> None:
    shown = message(text="Lanjut?")
    query = CallbackQuery("cb-77", USER, "chat-instance", message=shown, data="Ya")
    inbound = parse(settings, Update(23, callback_query=query))
    assert inbound == InboundMessage(
        channel="telegram",
        provider_id=f"{BOT_ID}:23",
        address="424242",
        payload="Ya",
        event={"type": "callback", "callback_query_id": "cb-77"},
        user_name="Siti",
        chat_message_id=7,  # the id of the message with the button
    )


def test_provider_id_names_the_bot(tmp_path: Path) -> None:
    update = Update(1001, message=message(text="Halo"))
    first = parse(make_settings(tmp_path, TELEGRAM_TOKEN="111:aaa"), update)
    second = parse(make_settings(tmp_path, TELEGRAM_TOKEN="222:bbb"), update)
    assert first is not None and second is not None
    assert (first.provider_id, second.provider_id) == ("111:1001", "222:1001")


def test_sticker_becomes_unsupported_event(settings: Settings) -> None:
    raw = json.loads(body(Update(24, message=message(text="x"))))
    del raw["message"]["text"]
    raw["message"]["sticker"] = {
        "file_id": "st", "file_unique_id": "stu", "type": "regular",
        "width": 512, "height": 512, "is_animated": False, "is_video": False,
    }  # fmt: skip
    inbound = parse_webhook(settings, headers(), json.dumps(raw).encode())
    assert inbound is not None and inbound.event is not None
    assert inbound.event["type"] == "unsupported"


# --- interpret and render ----------------------------------------------------------


def inbound(text: str = "", **kwargs: Any) -> InboundMessage:
    return InboundMessage("telegram", "1", "424242", text=text, **kwargs)


def callback(data: str) -> InboundMessage:
    return inbound(payload=data, event={"type": "callback", "callback_query_id": "cb"})


CHANNEL = TelegramChannel()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("halo", "halo"),
        ("  Saya mau daftar  ", "Saya mau daftar"),
        ("/check_eligibility", "check_eligibility"),
        ('/inform{"age": 99}', 'inform{"age": 99}'),
        ("/start", "halo"),
        ("/start ref-abc", "halo"),
        ("/start@prakerja_bot", "halo"),
        ("/", None),
    ],
)
def test_typed_text(text: str, expected: str | None) -> None:
    result = CHANNEL.interpret(inbound(text), {}, False)
    assert result.rasa_text == expected
    assert result.local_bodies == []


def test_typed_payload_of_a_current_button_is_kept() -> None:
    state = {"payloads": ["/check_eligibility"]}
    result = CHANNEL.interpret(inbound("/check_eligibility"), state, False)
    assert result.rasa_text == "/check_eligibility"


def test_start_after_blocking_clears_opt_out() -> None:
    assert CHANNEL.interpret(inbound("/start"), {}, True).opted_out is False
    assert CHANNEL.interpret(inbound("/start"), {}, False).opted_out is None


def test_callback_of_current_button_keeps_payload_and_answers() -> None:
    state = {"payloads": ["/check_eligibility", "Ya"]}
    result = CHANNEL.interpret(callback("/check_eligibility"), state, False)
    assert result.rasa_text == "/check_eligibility"
    assert result.local_bodies == [
        {"kind": "answer_callback", "callback_query_id": "cb"}
    ]


def test_callback_of_an_old_command_button_is_neutralised() -> None:
    result = CHANNEL.interpret(callback("/restart"), {"payloads": ["Ya"]}, False)
    assert result.rasa_text == "restart"
    assert result.local_bodies[0]["kind"] == "answer_callback"


def test_unknown_key_only_answers_the_callback() -> None:
    result = CHANNEL.interpret(callback(KEY_PREFIX + "0123"), {}, False)
    assert result.rasa_text is None
    assert result.local_bodies[0]["kind"] == "answer_callback"
    assert "text" in result.local_bodies[0]


def test_render_buttons_and_state() -> None:
    replies = [
        Reply("Halo! Ada yang bisa dibantu?"),
        Reply("Mau cek kelayakan?", (Button("Ya", "Ya"), Button("Tidak", "Tidak"))),
    ]
    rendered = CHANNEL.render(replies, {"other": 1})
    assert rendered.bodies == [
        {"kind": "message", "text": "Halo! Ada yang bisa dibantu?", "buttons": []},
        {
            "kind": "message",
            "text": "Mau cek kelayakan?",
            "buttons": [
                [
                    {"text": "Ya", "callback_data": "1:Ya"},
                    {"text": "Tidak", "callback_data": "1:Tidak"},
                ]
            ],
        },
    ]
    assert rendered.state["generation"] == 1
    assert rendered.state["payloads"] == ["Ya", "Tidak"]
    assert rendered.state["other"] == 1
    assert all("parse_mode" not in b for b in rendered.bodies)
    json.dumps(rendered.state)  # stored by the gateway


def _question(state: dict[str, Any], *titles: str) -> tuple[list[str], Any]:
    buttons = tuple(Button(title, title) for title in titles)
    rendered = CHANNEL.render([Reply("Lanjut?", buttons)], state)
    row = rendered.bodies[-1]["buttons"][0]
    return [button["callback_data"] for button in row], rendered.state


def _expired(result: Any) -> bool:
    return result.rasa_text is None and result.local_bodies == [
        {
            "kind": "answer_callback",
            "callback_query_id": "cb",
            "text": "Pilihan ini sudah tidak berlaku.",
        }
    ]


def test_a_button_of_an_older_reply_does_not_answer_the_next_question() -> None:
    (old_yes, _), state = _question({}, "Ya", "Tidak")
    (new_yes, _), state = _question(state, "Ya", "Tidak")
    assert old_yes != new_yes
    assert _expired(CHANNEL.interpret(callback(old_yes), state, False))
    assert CHANNEL.interpret(callback(new_yes), state, False).rasa_text == "Ya"


def test_a_second_tap_on_the_same_keyboard_is_stale() -> None:
    (yes, no), state = _question({}, "Ya", "Tidak")
    first = CHANNEL.interpret(callback(yes), state, False)
    assert first.rasa_text == "Ya"
    assert _expired(CHANNEL.interpret(callback(no), first.state, False))
    assert _expired(CHANNEL.interpret(callback(yes), first.state, False))


def test_a_reply_without_buttons_retires_the_keyboard() -> None:
    (yes, _), state = _question({}, "Ya", "Tidak")
    state = CHANNEL.render([Reply("Baik, terima kasih.")], state).state
    assert _expired(CHANNEL.interpret(callback(yes), state, False))


def test_an_unnumbered_tap_is_stale_once_replies_are_numbered() -> None:
    _, state = _question({}, "Ya", "Tidak")
    assert _expired(CHANNEL.interpret(callback("Ya"), state, False))
    assert _expired(CHANNEL.interpret(callback("/restart"), state, False))


def test_reply_numbers_wrap_around_and_stay_short() -> None:
    state: dict[str, Any] = {"generation": 999}
    (yes,), state = _question(state, "Ya")
    assert yes == "0:Ya"
    assert CHANNEL.interpret(callback(yes), state, False).rasa_text == "Ya"


def test_render_layout_short_and_long_titles() -> None:
    short = [Button(str(n), str(n)) for n in range(1, 6)]
    rows = CHANNEL.render([Reply("Pilih", tuple(short))], {}).bodies[0]["buttons"]
    assert [len(row) for row in rows] == [3, 2]
    long = (Button("Cek kelayakan saya", "/a"), Button("Tanya soal insentif", "/b"))
    rows = CHANNEL.render([Reply("Pilih", long)], {}).bodies[0]["buttons"]
    assert [len(row) for row in rows] == [1, 1]


def test_long_payload_round_trip() -> None:
    buttons = (Button("Digital", LONG_PAYLOAD), Button("Ya", "Ya"))
    rendered = CHANNEL.render([Reply("Pilih program", buttons)], {})
    data = rendered.bodies[0]["buttons"][0][0]["callback_data"]
    assert data.startswith("1:" + KEY_PREFIX) and len(data.encode()) <= 64
    assert rendered.state["payloads"] == [LONG_PAYLOAD, "Ya"]
    result = CHANNEL.interpret(callback(data), rendered.state, False)
    assert result.rasa_text == LONG_PAYLOAD
    again = CHANNEL.render([Reply("Lagi", buttons)], rendered.state)
    assert again.bodies[0]["buttons"][0][0]["callback_data"] == "2:" + data[2:]


def test_payload_that_looks_like_a_key_is_keyed() -> None:
    rendered = CHANNEL.render([Reply("x", (Button("a", KEY_PREFIX + "x"),))], {})
    data = rendered.bodies[0]["buttons"][0][0]["callback_data"]
    assert data != "1:" + KEY_PREFIX + "x"
    assert [data[2:], KEY_PREFIX + "x"] in rendered.state["payload_keys"]
    assert CHANNEL.interpret(callback(data), rendered.state, False).rasa_text == (
        KEY_PREFIX + "x"
    )


def test_stored_keys_are_those_of_the_latest_reply_in_order() -> None:
    state: dict[str, Any] = {}
    for n in range(80):
        buttons = tuple(Button("t", f"{LONG_PAYLOAD}-{n}-{b}") for b in range(3))
        state = CHANNEL.render([Reply("x", buttons)], state).state
    # a list of pairs: PostgreSQL's JSONB would reorder the keys of an object
    state = json.loads(json.dumps(state))
    assert [pair[1] for pair in state["payload_keys"]] == [
        f"{LONG_PAYLOAD}-79-{b}" for b in range(3)
    ]
    many = tuple(Button("t", f"{LONG_PAYLOAD}-{n}") for n in range(60))
    state = CHANNEL.render([Reply("x", many)], state).state
    assert len(state["payload_keys"]) == 50
    assert state["payload_keys"][-1][1] == f"{LONG_PAYLOAD}-59"


def test_keys_stored_by_an_older_version_still_work() -> None:
    key = "k:0123456789abcdef01234567"
    state = {"payloads": [LONG_PAYLOAD], "payloads_by_key": {key: LONG_PAYLOAD}}
    assert CHANNEL.interpret(callback(key), state, False).rasa_text == LONG_PAYLOAD


def test_render_without_buttons_clears_pressable_payloads() -> None:
    rendered = CHANNEL.render([Reply("Terima kasih")], {"payloads": ["Ya"]})
    assert rendered.state["payloads"] == []
    assert CHANNEL.render([], {"payloads": ["Ya"]}).state["payloads"] == ["Ya"]


def test_render_splits_long_text_and_keeps_buttons_last() -> None:
    text = ("Kalimat panjang tentang Prakerja. " * 200).strip()
    rendered = CHANNEL.render([Reply(text, (Button("Ya", "Ya"),))], {})
    assert len(rendered.bodies) == 2
    assert rendered.bodies[0]["buttons"] == []
    assert rendered.bodies[1]["buttons"] == [[{"text": "Ya", "callback_data": "1:Ya"}]]
    joined = " ".join(b["text"] for b in rendered.bodies)
    assert joined == text


def test_split_counts_utf16_units() -> None:
    chunks = split_text("😀" * 3000)
    assert [len(c) for c in chunks] == [2048, 952]


def test_photo_becomes_inform_with_metadata() -> None:
    event = {"type": "photo", "file_id": "AgAD-ktp", "width": 1280, "sender_id": 42}
    result = CHANNEL.interpret(inbound(event=event), {}, False)
    assert result.rasa_text == '/inform{"photo_file_id": "AgAD-ktp"}'
    assert result.rasa_metadata == {
        "event": {"type": "photo", "file_id": "AgAD-ktp", "width": 1280}
    }


def contact_event(user_id: int | None, phone: str = "6281234567890") -> dict[str, Any]:
    return {
        "type": "contact",
        "phone_number": phone,
        "user_id": user_id,
        "first_name": "Siti",
        "sender_id": 424242,
    }


def test_own_contact_becomes_inform_with_e164() -> None:
    result = CHANNEL.interpret(inbound(event=contact_event(424242)), {}, False)
    assert result.rasa_text == '/inform{"contact_phone": "+6281234567890"}'
    assert result.rasa_metadata == {
        "event": {"type": "contact", "phone": "+6281234567890"}
    }


@pytest.mark.parametrize("user_id", [None, 777])
def test_someone_elses_contact_gets_a_polite_reply(user_id: int | None) -> None:
    result = CHANNEL.interpret(inbound(event=contact_event(user_id)), {}, False)
    assert result.rasa_text is None
    assert result.local_bodies[0]["kind"] == "message"
    assert "sendiri" in result.local_bodies[0]["text"]


def test_foreign_number_gets_a_polite_reply() -> None:
    event = contact_event(424242, phone="+14155550100")
    result = CHANNEL.interpret(inbound(event=event), {}, False)
    assert result.rasa_text is None
    assert "Indonesia" in result.local_bodies[0]["text"]


def test_unsupported_message_gets_a_local_reply() -> None:
    result = CHANNEL.interpret(inbound(event={"type": "unsupported"}), {}, False)
    assert result.rasa_text is None
    assert result.local_bodies[0]["kind"] == "message"


def test_parse_interpret_round_trip_with_callback(settings: Settings) -> None:
    rendered = CHANNEL.render([Reply("Pilih", (Button("Digital", LONG_PAYLOAD),))], {})
    data = rendered.bodies[0]["buttons"][0][0]["callback_data"]
    query = CallbackQuery("cb-9", USER, "ci", message=message(text="Pilih"), data=data)
    parsed = parse(settings, Update(30, callback_query=query))
    assert parsed is not None
    result = CHANNEL.interpret(parsed, rendered.state, False)
    assert result.rasa_text == LONG_PAYLOAD
    assert result.local_bodies == [
        {"kind": "answer_callback", "callback_query_id": "cb-9"}
    ]


# --- sender against the fake Bot API ------------------------------------------------


def sender_for(tmp_path: Path, api: FakeTelegramApi, **kwargs: Any) -> TelegramSender:
    return TelegramSender(make_settings(tmp_path, TELEGRAM_API_URL=api.url), **kwargs)


async def test_message_with_inline_keyboard_arrives(
    tmp_path: Path, fake_api: FakeTelegramApi
) -> None:
    sender = sender_for(tmp_path, fake_api)
    rendered = CHANNEL.render(
        [
            Reply(
                "Mau cek kelayakan? <b>", (Button("Ya", "Ya"), Button("Tidak", "/deny"))
            )
        ],
        {},
    )
    try:
        result = await sender.send("424242", rendered.bodies[0])
    finally:
        await sender.close()
    assert result.ok and result.provider_message_id == "1"
    [sent] = fake_api.calls_to("sendMessage")
    assert sent["chat_id"] == "424242"
    assert sent["text"] == "Mau cek kelayakan? <b>"
    assert "parse_mode" not in sent
    assert sent["reply_markup"] == {
        "inline_keyboard": [
            [
                {"text": "Ya", "callback_data": "1:Ya"},
                {"text": "Tidak", "callback_data": "1:/deny"},
            ]
        ]
    }


async def test_answer_callback(tmp_path: Path, fake_api: FakeTelegramApi) -> None:
    sender = sender_for(tmp_path, fake_api)
    body = {"kind": "answer_callback", "callback_query_id": "cb-1"}
    try:
        assert (await sender.send("424242", body)).ok
    finally:
        await sender.close()
    assert fake_api.calls_to("answerCallbackQuery") == [{"callback_query_id": "cb-1"}]


async def test_retry_after_is_reported(
    tmp_path: Path, fake_api: FakeTelegramApi
) -> None:
    fake_api.fail_next(error="retry_after", retry_after=3)
    sender = sender_for(tmp_path, fake_api)
    body = {"kind": "message", "text": "Halo", "buttons": []}
    try:
        first = await sender.send("424242", body)
        second = await sender.send("424242", body)  # still paused: not sent
    finally:
        await sender.close()
    assert not first.ok and not first.permanent and first.retry_after == 3.0
    assert not second.ok and second.retry_after is not None
    assert 0 < second.retry_after <= 3.0
    assert len(fake_api.calls) == 1


@pytest.mark.parametrize("error", ["blocked", "chat_not_found"])
async def test_blocked_or_unknown_chat_is_permanent(
    tmp_path: Path, fake_api: FakeTelegramApi, error: str
) -> None:
    fake_api.fail_next(error=error)
    sender = sender_for(tmp_path, fake_api)
    try:
        result = await sender.send("424242", {"kind": "message", "text": "Halo"})
    finally:
        await sender.close()
    assert not result.ok and result.permanent and result.retry_after is None


async def test_server_error_and_timeout_are_retryable(
    tmp_path: Path, fake_api: FakeTelegramApi
) -> None:
    fake_api.fail_next(error="server_error")
    fake_api.fail_next(error="slow", delay=1.0)
    sender = sender_for(tmp_path, fake_api, timeout=0.3)
    body = {"kind": "message", "text": "Halo"}
    try:
        server_error = await sender.send("424242", body)
        timed_out = await sender.send("424242", body)
        fine = await sender.send("424242", body)
    finally:
        await sender.close()
    for result in (server_error, timed_out):
        assert not result.ok and not result.permanent and result.retry_after is None
    assert not server_error.unknown, "Telegram answered: it did not take it"
    assert timed_out.unknown, "no answer: Telegram may have the message"
    assert fine.ok


async def test_a_refused_connection_provably_never_arrived(tmp_path: Path) -> None:
    with FakeTelegramApi() as api:
        url = api.url  # nothing listens there any more
    sender = TelegramSender(make_settings(tmp_path, TELEGRAM_API_URL=url), timeout=2)
    try:
        result = await sender.send("424242", {"kind": "message", "text": "Halo"})
    finally:
        await sender.close()
    assert not result.ok and not result.permanent and not result.unknown
    assert result.error is not None and "ClientConnectorError" in result.error


@pytest.mark.parametrize(
    ("sent", "cause", "arrived"),
    [
        (False, aiohttp.ClientConnectionError("refused"), False),
        (False, asyncio.TimeoutError(), False),  # connect or pool timeout
        (True, asyncio.TimeoutError(), True),  # no answer in time
        (True, aiohttp.ServerDisconnectedError(), True),  # closed mid-response
        (True, aiohttp.ClientOSError(104, "reset"), True),
    ],
)
async def test_only_errors_before_the_request_left_are_safe_to_repeat(
    sent: bool, cause: Exception, arrived: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transport raises PTB's TimedOut/NetworkError, caused by
    RequestNotSentError when the request's headers were never written."""

    def failing(self: Any, method: str, url: str, **kwargs: Any) -> Any:
        if sent:
            kwargs["trace_request_ctx"].sent = True
        raise cause

    monkeypatch.setattr(aiohttp.ClientSession, "request", failing)
    request = AiohttpRequest()
    try:
        with pytest.raises(NetworkError) as caught:
            await request.do_request("http://127.0.0.1:9/botX/sendMessage", "POST")
    finally:
        await request.shutdown()
    assert never_arrived(caught.value) is not arrived
    assert isinstance(caught.value, TimedOut) is isinstance(cause, asyncio.TimeoutError)


async def test_wrong_token_is_retryable_not_permanent(
    tmp_path: Path, fake_api: FakeTelegramApi
) -> None:
    settings = make_settings(
        tmp_path, TELEGRAM_API_URL=fake_api.url, TELEGRAM_TOKEN="1:wrong"
    )
    sender = TelegramSender(settings)
    try:
        result = await sender.send("424242", {"kind": "message", "text": "Halo"})
    finally:
        await sender.close()
    assert not result.ok and not result.permanent
    assert "wrong" not in (result.error or "")


async def test_unknown_body_kind_is_permanent(tmp_path: Path) -> None:
    sender = TelegramSender(make_settings(tmp_path))
    result = await sender.send("424242", {"kind": "fax"})
    assert not result.ok and result.permanent


def test_sender_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        TelegramSender(make_settings(tmp_path, TELEGRAM_TOKEN=""))


# --- rate limiter --------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


async def test_limiter_one_chat_bursts_then_one_per_second() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await limiter.wait("42")
    assert clock.sleeps == [1.0, 1.0]


async def test_a_raised_chat_rate_applies_to_the_sender_the_settings_make(
    tmp_path: Path,
) -> None:
    """TELEGRAM_CHAT_MESSAGES_PER_SECOND (benchmarks only) sets one chat's pace
    after its burst; unset it is Telegram's rule, one a second."""
    env = {"PRAKERJA_ENV": "development", "PRAKERJA_VAR_DIR": str(tmp_path)}
    assert load_settings(env).telegram_chat_per_second == 1
    raised = load_settings({**env, "TELEGRAM_CHAT_MESSAGES_PER_SECOND": "4"})
    clock = FakeClock()
    limiter = make_pacer(None, "bot", 1000, 5, raised.telegram_chat_per_second)
    assert isinstance(limiter, RateLimiter)
    limiter._clock, limiter._sleep = clock, clock.sleep  # noqa: SLF001
    for _ in range(5):
        await limiter.wait("42")
    assert clock.sleeps == [0.25, 0.25]


async def test_limiter_overall_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(overall_per_second=30, clock=clock, sleep=clock.sleep)
    for chat in range(65):
        await limiter.wait(str(chat))
    assert clock.now - 100.0 == pytest.approx(60 / 30)


async def test_limiter_group_chat_is_slower() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(4):
        await limiter.wait("-100123")
    assert clock.sleeps == [3.0]


async def test_limiter_pause() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    limiter.pause("42", 5)
    assert limiter.paused_for("42") == 5
    assert limiter.paused_for("43") == 0
    clock.now += 6
    assert limiter.paused_for("42") == 0


async def test_limiter_hands_back_a_long_wait_without_reserving() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(3):
        assert await limiter.wait("-100123", max_wait=1.0) == 0.0
    assert await limiter.wait("-100123", max_wait=1.0) == pytest.approx(3.0)
    assert clock.sleeps == []
    clock.now += 3.0  # nothing was reserved: the next one goes at once
    assert await limiter.wait("-100123", max_wait=1.0) == 0.0
    assert clock.sleeps == []


async def test_limiter_short_waits_are_slept() -> None:
    clock = FakeClock()
    limiter = RateLimiter(overall_per_second=10, clock=clock, sleep=clock.sleep)
    for chat in range(6):  # a burst of 5, then 0.1 s apart
        assert await limiter.wait(str(chat), max_wait=0.2) == 0.0
    assert clock.sleeps == [0.1]


async def test_paced_send_is_handed_back_to_the_outbox(
    tmp_path: Path, fake_api: FakeTelegramApi
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    sender = sender_for(tmp_path, fake_api, limiter=limiter, max_wait=0.5)
    body = {"kind": "message", "text": "Halo", "buttons": []}
    try:
        results = [await sender.send("-100123", body) for _ in range(4)]
    finally:
        await sender.close()
    assert all(result.ok for result in results[:3])
    paced = results[3]
    assert not paced.ok and not paced.permanent
    assert paced.retry_after == pytest.approx(3.0)
    assert len(fake_api.calls_to("sendMessage")) == 3
    assert clock.sleeps == []


@pytest.mark.parametrize("opt_in", ["true", "false"])
def test_retry_after_seconds_int_or_timedelta(
    monkeypatch: pytest.MonkeyPatch, opt_in: str
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", opt_in)
    assert retry_after_seconds(RetryAfter(timedelta(seconds=2.5))) == 2.5
    assert retry_after_seconds(RetryAfter(7)) == 7.0


@pytest.mark.parametrize(
    "buttons",
    [(), (Button("Ya", "Ya"), Button("Tidak", "/deny"))],
    ids=["plain", "keyboard"],
)
async def test_a_send_makes_the_request_send_message_makes(
    tmp_path: Path, fake_api: FakeTelegramApi, buttons: tuple[Button, ...]
) -> None:
    """The sender asks for sendMessage through `do_api_request` (no `Message`
    built of the answer): Telegram gets what `Bot.send_message` would send, and
    PTB's hint to use `send_message` is not shown."""
    sender = sender_for(tmp_path, fake_api)
    [body] = CHANNEL.render([Reply("Halo, kamu mau daftar?", buttons)], {}).bodies
    bot = make_bot(make_settings(tmp_path, TELEGRAM_API_URL=fake_api.url))
    try:
        with warnings.catch_warnings(record=True) as shown:
            result = await sender.send("424242", body)
        await bot.send_message(
            chat_id=424242, text=body["text"], reply_markup=_keyboard(body["buttons"])
        )
    finally:
        await sender.close()
        await bot.request.shutdown()
    assert [str(w.message) for w in shown if "Please use" in str(w.message)] == []
    ours, theirs = fake_api.calls_to("sendMessage")
    assert ours == theirs
    assert result.ok and result.provider_message_id == "1"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"message_id": 7, "text": "x"}, "7"),
        ({"text": "x"}, None),
        (True, None),
        ({"message_id": "7"}, None),
    ],
)
def test_message_id_of_an_answer(answer: object, expected: str | None) -> None:
    assert _message_id(answer) == expected


async def test_an_answer_without_a_message_id_is_an_unknown_outcome(
    tmp_path: Path, fake_api: FakeTelegramApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telegram took the message but its id cannot be read: never sent again
    blindly (the outbox looks it up), nor recorded as sent."""
    sender = sender_for(tmp_path, fake_api)

    async def no_id(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"ok": True}

    monkeypatch.setattr(type(sender._get_bot()), "do_api_request", no_id)
    try:
        result = await sender.send("424242", {"kind": "message", "text": "Halo"})
    finally:
        await sender.close()
    assert not result.ok and result.unknown and not result.permanent
