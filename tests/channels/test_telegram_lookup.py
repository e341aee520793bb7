"""Whether a Telegram message arrived, asked of the chat's message ids
(`bot.channels.telegram_lookup`), through python-telegram-bot against the fake
Bot API (ids count per chat for both sides, as in a private chat)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from bot.channels.base import LookupResult
from bot.channels.telegram import TelegramSender
from tests.channels.test_telegram import sender_for
from tests.fakes.telegram_api import FakeTelegramApi

CHAT = "424242"
BODY = {"kind": "message", "text": "Kartu Prakerja itu program pemerintah.",
        "buttons": [[{"text": "Syarat", "callback_data": "1:syarat"}]]}  # fmt: skip
SINCE = datetime(2026, 1, 1)


@pytest.fixture
def api() -> Iterator[FakeTelegramApi]:
    with FakeTelegramApi() as fake:
        yield fake


async def _look(sender: TelegramSender, after: str | None) -> LookupResult:
    try:
        return await sender.lookup(CHAT, BODY, SINCE, after=after)
    finally:
        await sender.close()


async def _send(sender: TelegramSender, body: dict[str, object]) -> str:
    result = await sender.send(CHAT, body)
    assert result.ok and result.provider_message_id
    return result.provider_message_id


async def test_a_message_that_arrived_is_found_past_the_persons_messages(
    tmp_path: Path, api: FakeTelegramApi
) -> None:
    sender = sender_for(tmp_path, api)
    known = await _send(sender, {"kind": "message", "text": "halo"})
    api.person_writes(CHAT)
    api.person_writes(CHAT)
    arrived = await _send(sender, BODY)
    assert await _look(sender, known) == LookupResult(ids=(arrived,))
    assert [m["text"] for m in api.messages_in(CHAT)][-1] == BODY["text"], "unchanged"


async def test_a_message_that_never_arrived_is_proven_absent(
    tmp_path: Path, api: FakeTelegramApi
) -> None:
    sender = sender_for(tmp_path, api)
    known = await _send(sender, {"kind": "message", "text": "halo"})
    api.person_writes(CHAT)
    assert await _look(sender, known) == LookupResult()


async def test_without_a_known_message_or_past_many_it_cannot_be_told(
    tmp_path: Path, api: FakeTelegramApi
) -> None:
    sender = sender_for(tmp_path, api)
    known = await _send(sender, {"kind": "message", "text": "halo"})
    assert await _look(sender_for(tmp_path, api), None) == LookupResult(
        undecidable=True
    )
    for _ in range(6):  # more of the person's messages than the probes reach
        api.person_writes(CHAT)
    assert await _look(sender, known) == LookupResult(undecidable=True)


async def test_a_message_behind_a_deleted_one_is_not_taken_as_absent(
    tmp_path: Path, api: FakeTelegramApi
) -> None:
    sender = sender_for(tmp_path, api)
    known = await _send(sender, {"kind": "message", "text": "halo"})
    deleted = api.person_writes(CHAT)
    api.delete(CHAT, deleted)
    await _send(sender, BODY)
    assert await _look(sender, known) == LookupResult(undecidable=True)
