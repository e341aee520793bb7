"""action_handoff and the fallback's handoff: a ticket with its reason code,
the queue position and wait, or the hours when agents are off duty."""

from __future__ import annotations

from datetime import datetime

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import delete, select

from actions.fallback import ActionHandleFallback
from actions.handoff import ActionHandoff
from actions.services import Services, use_services
from bot.clock import WIB
from bot.db import Base
from bot.handoff.desk import HandoffDesk
from bot.handoff.hours import AgentHours
from bot.handoff.models import Ticket
from bot.messages.models import Conversation
from bot.policy.answers import call_center_text
from bot.policy.programme import load_policy
from tests.actions.conftest import build_tracker

DAYTIME = datetime(2026, 11, 25, 3, 0)  # naive UTC: Wednesday 10.00 WIB
NIGHT = datetime(2026, 11, 25, 15, 0)  # 22.00 WIB


@pytest.fixture
def desk_at(action_sessions, default_services: Services):
    """Install a handoff desk whose clock says `moment`; tables emptied."""
    with action_sessions() as session, session.begin():
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))

    def install(moment: datetime) -> None:
        use_services(
            Services(
                default_services.desk,
                default_services.mailer,
                HandoffDesk(action_sessions, AgentHours(), clock=lambda: moment),
                default_services.vault,
                mail=default_services.mail,
            )
        )

    install(DAYTIME)
    return install


def conversation_for(sessions, tracker: Tracker, channel: str = "sms") -> None:
    """Store the gateway conversation behind the tracker's sender id."""
    with sessions() as session, session.begin():
        session.add(
            Conversation(
                channel=channel,
                address=f"+62812{abs(hash(tracker.sender_id)) % 10**7:07d}",
                pseudonym=tracker.sender_id,
                state={},
            )
        )


def tickets(sessions) -> list[Ticket]:
    with sessions() as session:
        return list(session.execute(select(Ticket)).scalars())


async def test_asking_for_a_person_opens_a_ticket_and_tells_the_place(
    action_sessions, desk_at, chat_tracker, domain, sms_safe
) -> None:
    tracker = chat_tracker("sambungkan ke petugas", "request_human")
    conversation_for(action_sessions, tracker)
    dispatcher = CollectingDispatcher()

    events = await ActionHandoff().run(dispatcher, tracker, domain)

    assert events == []
    (message,) = dispatcher.messages
    assert message["text"].startswith("Baik, saya sambungkan ke petugas.")
    assert "Posisimu: ke-1" in message["text"] and "BATAL" in message["text"]
    sms_safe(message["text"])
    (ticket,) = tickets(action_sessions)
    assert (ticket.reason, ticket.status) == ("request_human", "open")


async def test_asking_twice_keeps_one_ticket(
    action_sessions, desk_at, chat_tracker, domain
) -> None:
    tracker = chat_tracker("mau ngomong sama orang", "request_human")
    conversation_for(action_sessions, tracker)

    await ActionHandoff().run(CollectingDispatcher(), tracker, domain)
    await ActionHandoff().run(CollectingDispatcher(), tracker, domain)

    assert len(tickets(action_sessions)) == 1


async def test_a_complaint_is_handed_off_with_its_reason(
    action_sessions, desk_at, chat_tracker, domain
) -> None:
    tracker = chat_tracker("pelayanannya parah banget", "complaint")
    conversation_for(action_sessions, tracker, "telegram")
    dispatcher = CollectingDispatcher()

    await ActionHandoff().run(dispatcher, tracker, domain)

    assert dispatcher.messages[0]["text"].startswith("Maaf atas pengalaman")
    assert [t.reason for t in tickets(action_sessions)] == ["complaint"]


async def test_out_of_hours_the_person_is_told_when_an_agent_replies(
    action_sessions, desk_at, chat_tracker, domain, sms_safe
) -> None:
    desk_at(NIGHT)
    tracker = chat_tracker("tolong sambungkan cs", "request_human")
    conversation_for(action_sessions, tracker)
    dispatcher = CollectingDispatcher()

    await ActionHandoff().run(dispatcher, tracker, domain)

    text = dispatcher.messages[0]["text"]
    assert "WIB" in text and "petugas akan membalas di sini" in text
    assert "Posisimu" not in text
    sms_safe(text)
    assert [t.status for t in tickets(action_sessions)] == ["open"]


async def test_a_handoff_inside_a_form_returns_no_events(
    action_sessions, desk_at, domain, ev
) -> None:
    tracker = build_tracker(
        [ev.action("action_listen"), ev.user("petugas", "request_human")],
        active_loop="registration_form",
        requested_slot="reg_nik",
    )
    conversation_for(action_sessions, tracker)

    events = await ActionHandoff().run(CollectingDispatcher(), tracker, domain)

    assert events == []  # data/rules deactivate the form after the handoff


async def test_two_fallbacks_in_a_row_open_a_fallback_ticket(
    action_sessions, desk_at, chat_tracker, domain, ev
) -> None:
    history = [
        ev.action("action_listen"),
        ev.user("asdf", "nlu_fallback", confidence=0.2),
        ev.action("action_handle_fallback"),
        ev.bot("Maaf, saya belum paham."),
        {"event": "rewind"},
    ]
    tracker = chat_tracker("qwer", "nlu_fallback", history)
    conversation_for(action_sessions, tracker)
    dispatcher = CollectingDispatcher()

    await ActionHandleFallback().run(dispatcher, tracker, domain)

    assert dispatcher.messages[0]["text"].startswith("Maaf, saya masih belum paham.")
    assert [t.reason for t in tickets(action_sessions)] == ["fallback"]


@pytest.mark.parametrize(
    ("version", "facts"),
    [
        ("2020", ("021-25541246", "Senin-Jumat", "08.00-19.00 WIB")),
        ("2021", ("0800-150-3001", "setiap hari", "08.00-20.00 WIB")),
        ("2023", ("Formulir Pengaduan",)),
    ],
)
@pytest.mark.parametrize(
    "text", ["nomor call center prakerja berapa", "minta no telp cs", "jam buka cs?"]
)
async def test_asking_for_the_call_center_number_gives_it_without_a_ticket(
    action_sessions,
    desk_at,
    chat_tracker,
    domain,
    sms_safe,
    monkeypatch: pytest.MonkeyPatch,
    version: str,
    facts: tuple[str, ...],
    text: str,
) -> None:
    monkeypatch.setenv("PRAKERJA_POLICY", version)
    tracker = chat_tracker(text, "request_human")
    conversation_for(action_sessions, tracker)
    dispatcher = CollectingDispatcher()

    events = await ActionHandoff().run(dispatcher, tracker, domain)

    assert events == []
    (message,) = dispatcher.messages
    for fact in facts:
        assert fact in message["text"]
    assert "info@prakerja.go.id" in message["text"]
    assert "Ketik PETUGAS" in message["text"] and "Posisimu" not in message["text"]
    assert tickets(action_sessions) == []
    sms_safe(message["text"])


# --- outside the gateway: the call center of the policy ------------------------------


async def test_handoff_without_a_conversation_gives_the_call_center(
    chat_tracker, dispatcher, domain, use_policy, sms_safe
) -> None:
    use_policy("2021")
    tracker = chat_tracker("sambungkan ke petugas", "request_human")

    events = await ActionHandoff().run(dispatcher, tracker, domain)

    assert events == []
    (message,) = dispatcher.messages
    assert message["text"].startswith(call_center_text(load_policy("2021")))
    sms_safe(message["text"])


@pytest.mark.parametrize(("hour", "closed"), [(10, False), (22, True), (6, True)])
async def test_handoff_without_a_conversation_says_when_the_call_center_reopens(
    chat_tracker, dispatcher, domain, use_policy, monkeypatch, hour, closed
) -> None:
    use_policy("2021")
    now = datetime(2026, 11, 25, hour, 0, tzinfo=WIB)  # a Wednesday
    monkeypatch.setattr("actions.handoff.now_wib", lambda: now)
    tracker = chat_tracker("mau ngomong sama orang", "request_human")

    await ActionHandoff().run(dispatcher, tracker, domain)

    (message,) = dispatcher.messages
    assert message["text"] == call_center_text(load_policy("2021"), now)
    assert ("buka lagi" in message["text"]) is closed
