"""The transcript an agent reads: the person's messages and every stored reply
(bot, agent, system) in time order, with the text the person saw."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.handoff import body_text, transcript
from bot.messages.models import InboxMessage, OutboxMessage
from tests.handoff.conftest import T0, conversation


def _in(
    session: Session,
    chat: int,
    seconds: int,
    text: str = "",
    payload: str | None = None,
    event: dict[str, Any] | None = None,
    channel: str = "telegram",
) -> None:
    session.add(
        InboxMessage(
            channel=channel,
            provider_id=f"p{chat}-{seconds}",
            conversation_id=chat,
            text=text,
            payload=payload,
            event=event,
            status="done",
            received_at=T0 + timedelta(seconds=seconds),
        )
    )


def _out(
    session: Session,
    chat: int,
    seconds: int,
    body: dict[str, Any],
    author: str = "bot",
    agent_id: int | None = None,
    status: str = "sent",
) -> None:
    session.add(
        OutboxMessage(
            conversation_id=chat,
            seq=0,
            body=body,
            author=author,
            agent_id=agent_id,
            status=status,
            created_at=T0 + timedelta(seconds=seconds),
        )
    )


def _message(
    text: str, buttons: list[list[dict[str, str]]] | None = None
) -> dict[str, Any]:
    return {"kind": "message", "text": text, "buttons": buttons or []}


def test_a_telegram_conversation_reads_in_order(session: Session) -> None:
    chat = conversation(session, "100")
    other = conversation(session, "200")
    _in(session, chat, 0, "halo")
    _out(
        session,
        chat,
        1,
        _message("Mau daftar?", [[{"text": "Ya", "callback_data": "3:/affirm"}]]),
    )
    _in(session, chat, 2, payload="3:/affirm", event={"type": "callback"})
    _out(session, chat, 3, {"kind": "answer_callback", "callback_query_id": "q"})
    _in(session, chat, 4, event={"internal": "nik_checked"})
    _in(session, chat, 5, event={"type": "photo", "file_id": "f"}, text="KTP saya")
    _in(session, chat, 6, event={"type": "contact", "phone_number": "+62811"})
    _out(session, chat, 7, _message("Posisimu: ke-1"), author="system")
    _out(session, chat, 8, _message("Halo, saya Sari."), author="agent", agent_id=4)
    _in(session, other, 9, "bukan percakapan ini")
    session.commit()

    turns = transcript(session, chat)
    assert [(t.author, t.text) for t in turns] == [
        ("user", "halo"),
        ("bot", "Mau daftar?\n[Ya]"),
        ("user", "[pilih tombol] /affirm"),
        ("user", "[foto] KTP saya"),
        ("user", "[kontak dibagikan]"),
        ("system", "Posisimu: ke-1"),
        ("agent", "Halo, saya Sari."),
    ]
    assert [t.agent_id for t in turns] == [None] * 6 + [4]
    assert turns[0].at == T0 and turns[0].delivery is None
    assert turns[-1].delivery == "sent"
    assert "+62811" not in str([t.text for t in turns])
    assert "Sari" not in repr(turns[-1])


def test_sms_bodies_and_the_last_turns_only(session: Session) -> None:
    phone = conversation(session, "+6281234567890", channel="sms")
    for second in range(0, 10, 2):
        _in(session, phone, second, f"pesan {second}", channel="sms")
        _out(session, phone, second + 1, {"kind": "sms", "text": f"balas {second}"})
    _out(session, phone, 11, {"kind": "sms", "text": "tidak terkirim"}, status="failed")
    session.commit()

    turns = transcript(session, phone, limit=3)
    assert [(t.author, t.text, t.delivery) for t in turns] == [
        ("user", "pesan 8", None),
        ("bot", "balas 8", "sent"),
        ("bot", "tidak terkirim", "failed"),
    ]
    assert len(transcript(session, phone)) == 11
    assert transcript(session, phone, limit=0) == []


def test_the_turns_up_to_a_moment_only(session: Session) -> None:
    phone = conversation(session, "+6281234567890", channel="sms")
    for second in range(0, 10, 2):
        _in(session, phone, second, f"pesan {second}", channel="sms")
        _out(session, phone, second + 1, {"kind": "sms", "text": f"balas {second}"})
    session.commit()

    turns = transcript(session, phone, limit=2, until=T0 + timedelta(seconds=4))
    assert [(t.author, t.text) for t in turns] == [
        ("bot", "balas 2"),
        ("user", "pesan 4"),
    ]
    assert len(transcript(session, phone, until=T0 + timedelta(seconds=4))) == 5


def test_body_text_per_channel() -> None:
    buttons = [[{"text": "Ya", "callback_data": "1:/a"}, {"text": "Tidak"}]]
    assert body_text("telegram", _message("Pilih", buttons)) == "Pilih\n[Ya] [Tidak]"
    assert body_text("telegram", {"kind": "answer_callback"}) == ""
    assert body_text("sms", {"kind": "sms", "text": "Halo"}) == "Halo"
    assert body_text("sms", "not a body") == ""
