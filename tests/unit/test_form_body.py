"""The senders' form bodies are the bytes aiohttp would have sent for the dict."""

from __future__ import annotations

import aiohttp
import pytest
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.channels.form_body import FORM_CONTENT_TYPE, urlencoded
from bot.channels.telegram_request import _body

FIELDS = [
    {
        "To": "+6281234567890",
        "From": "+15550001111",
        "Body": "Halo, kode kamu: 123 & 456",
    },
    {
        "chat_id": "700000001",
        "text": "Cek status: ketik STATUS ✓",
        "parse_mode": "HTML",
    },
    {"MediaUrl": ["https://a.example/1.png", "https://a.example/2.png"]},
    {"empty": "", "number": 42},
]


def aiohttp_body(fields: dict[str, object]) -> bytes:
    """What aiohttp sends for `data=fields` (its FormData, urlencoded)."""
    pairs = [
        (name, item)
        for name, value in fields.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    form = aiohttp.FormData(pairs)
    payload = form()
    assert payload.content_type == FORM_CONTENT_TYPE
    return bytes(payload._value)


@pytest.mark.parametrize("fields", FIELDS)
def test_urlencoded_is_aiohttps_body(fields: dict[str, object]) -> None:
    assert urlencoded(fields) == aiohttp_body(fields)


def test_telegram_fields_go_urlencoded_with_their_header() -> None:
    data = RequestData(
        [
            RequestParameter.from_input("chat_id", 700000001),
            RequestParameter.from_input("text", "Halo! Ketik DAFTAR untuk mulai."),
        ]
    )
    body, headers = _body(data)
    assert headers == {"Content-Type": FORM_CONTENT_TYPE}
    assert body == aiohttp_body(data.json_parameters)


def test_no_request_data_no_body() -> None:
    assert _body(None) == (None, None)
