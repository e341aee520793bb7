"""Working tickets in the console, on SQLite and PostgreSQL: who may see and do
what, replies and resolving through the gateway inbox, the audited reveal, and
hostile text shown inert.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from bot.console.models import AuditEvent
from bot.handoff import tickets
from bot.messages.models import InboxMessage, OutboxMessage
from bot.registry import link_identity, owner_of, register_applicant
from bot.registry.identities import get_or_create_identity, unlink_identity
from bot.registry.models import LINK_PHONE
from tests.console.conftest import (
    HOSTILE,
    KK,
    NIK,
    SMS_PHONE,
    Browser,
    Console,
    concrete,
    guarded,
)
from tests.fakes.rasa import FakeRasa
from tests.gateway.conftest import wait_until

OTHER_NIK = "3273054302950002"
OTHER_KK = "3273051203180003"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Both database backends."""
    return str(request.param)


def audit_events(console: Console, action: str) -> list[AuditEvent]:
    return list(
        console.run(
            lambda s: (
                s.execute(
                    select(AuditEvent)
                    .where(AuditEvent.action == action)
                    .order_by(AuditEvent.id)
                )
                .scalars()
                .all()
            )
        )
    )


def internal_events(console: Console, name: str) -> list[InboxMessage]:
    rows = console.run(lambda s: s.execute(select(InboxMessage)).scalars().all())
    return [
        row
        for row in rows
        if isinstance(row.event, dict) and row.event.get("internal") == name
    ]


def status_of(console: Console, ticket_id: int) -> Any:
    return console.run(lambda s: tickets.get_ticket(s, ticket_id))


def claim(console: Console, browser: Browser, ticket_id: int) -> Any:
    return console.post(browser, f"/console/tickets/{ticket_id}/claim")


def test_an_agent_never_acts_on_another_agents_ticket(console: Console) -> None:
    andi, budi = console.agent("andi"), console.agent("budi")
    a, b = console.login(andi), console.login(budi)
    applicant = console.applicant()
    ticket = console.ticket(applicant_id=applicant)
    assert claim(console, b, ticket.id).status_code == 303
    before = console.run(lambda s: s.execute(select(InboxMessage.id)).scalars().all())
    routes = [
        (path, method)
        for path, method in guarded(console.client.app)
        if "{ticket_id" in path
    ]
    assert len(routes) >= 8
    for path, method in routes:
        url = concrete(path, ticket.id)
        if method == "GET":
            response = console.get(a, url)
        elif path.endswith("/reveal"):
            response = console.post_json(a, url, {"field": "nik"})
        else:
            response = console.post(a, url, {"text": "hai", "agent_id": str(andi.id)})
        assert response.status_code == 403, url
        assert NIK not in response.text
    after = console.run(lambda s: s.execute(select(InboxMessage.id)).scalars().all())
    assert after == before
    assert audit_events(console, "reveal") == []
    assert console.run(lambda s: tickets.notes_of(s, ticket.id)) == []
    assert status_of(console, ticket.id).agent_id == budi.id
    queue = console.get(a, "/console/api/queue").json()["tickets"]
    assert [item["id"] for item in queue] == []


def test_open_tickets_are_visible_to_every_agent_until_claimed(
    console: Console,
) -> None:
    andi, budi = console.agent("andi"), console.agent("budi")
    a, b = console.login(andi), console.login(budi)
    ticket = console.ticket(reason="complaint")
    for browser in (a, b):
        items = console.get(browser, "/console/api/queue").json()["tickets"]
        assert [(i["id"], i["reason"], i["channel"]) for i in items] == [
            (ticket.id, "complaint", "sms")
        ]
        assert items[0]["agent"] == "" and items[0]["waiting"]
        assert console.get(browser, f"/console/tickets/{ticket.id}").status_code == 200
    assert claim(console, a, ticket.id).status_code == 303
    taken = claim(console, b, ticket.id)
    assert taken.status_code == 403  # now Andi's: Budi may not even see it
    assert status_of(console, ticket.id).agent_id == andi.id
    mine = console.get(a, "/console/api/queue").json()["tickets"]
    assert mine[0]["mine"] is True and mine[0]["agent"] == "Andi"
    assert len(audit_events(console, "claim")) == 1


def test_a_supervisor_sees_everything_and_assigns(console: Console) -> None:
    sari, andi, budi = (
        console.agent("sari", "supervisor"),
        console.agent("andi"),
        console.agent("budi"),
    )
    s, a, b = console.login(sari), console.login(andi), console.login(budi)
    ticket = console.ticket()
    claim(console, a, ticket.id)
    assert console.get(s, f"/console/tickets/{ticket.id}").status_code == 200
    assert console.get(b, f"/console/tickets/{ticket.id}").status_code == 403
    assert (
        console.post(a, f"/console/tickets/{ticket.id}/assign", {"agent_id": "3"})
    ).status_code == 403  # agents do not assign
    response = console.post(
        s, f"/console/tickets/{ticket.id}/assign", {"agent_id": str(budi.id)}
    )
    assert response.status_code == 303
    assert status_of(console, ticket.id).agent_id == budi.id
    assert console.get(b, f"/console/tickets/{ticket.id}").status_code == 200
    assert console.get(a, f"/console/tickets/{ticket.id}").status_code == 403
    [event] = audit_events(console, "assign")
    assert event.agent_id == sari.id and event.target == f"agent:{budi.id}"
    assert console.get(a, "/console/supervisor").status_code == 403
    page = console.get(s, "/console/supervisor")
    assert page.status_code == 200
    assert "<svg" in page.text and "Corong pendaftaran" in page.text
    assert "tugaskan tiket" in page.text  # the audit log


def test_a_reply_reaches_the_person_as_sms(console: Console) -> None:
    andi = console.agent("andi")
    a = console.login(andi)
    ticket = console.ticket()
    reply = "Halo, saya cek dulu datamu ya. \u201cSebentar\u201d"
    response = console.post(
        a,
        f"/console/tickets/{ticket.id}/reply",
        {"text": reply, "key": "a" * 32},
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/console/tickets/{ticket.id}")
    [event] = internal_events(console, "agent_reply")
    assert event.text == reply
    assert event.event["data"] == {"agent_id": andi.id, "ticket_id": ticket.id}
    stored = status_of(console, ticket.id)
    assert stored.status == "assigned" and stored.agent_id == andi.id
    assert stored.first_reply_at is not None
    # a double submit of the same form stores the reply once
    console.post(
        a, f"/console/tickets/{ticket.id}/reply", {"text": reply, "key": "a" * 32}
    )
    assert len(internal_events(console, "agent_reply")) == 1
    sent = wait_until(lambda: console.sms.texts(), what="the SMS reply")
    assert sent == ['Halo, saya cek dulu datamu ya. "Sebentar"']
    assert console.sms.sent[0].address == SMS_PHONE
    outbox = console.run(lambda s: s.execute(select(OutboxMessage)).scalars().all())
    assert [(row.author, row.agent_id) for row in outbox] == [("agent", andi.id)]
    state = console.get(a, f"/console/api/tickets/{ticket.id}").json()
    assert state["turns"][-1]["author"] == "agent"
    assert state["turns"][-1]["author_label"] == "Andi"
    assert len(audit_events(console, "reply")) == 2


def test_an_empty_or_too_long_reply_is_refused(console: Console) -> None:
    a = console.login(console.agent("andi"))
    ticket = console.ticket()
    for text, notice in (("   ", "empty"), ("x" * 1601, "too_long")):
        response = console.post(
            a, f"/console/tickets/{ticket.id}/reply", {"text": text}
        )
        assert response.status_code == 303
        assert f"msg={notice}" in response.headers["location"]
    assert internal_events(console, "agent_reply") == []


def test_resolving_hands_the_person_back_to_the_bot(
    console: Console, rasa: FakeRasa
) -> None:
    andi = console.agent("andi")
    a = console.login(andi)
    ticket = console.ticket()
    claim(console, a, ticket.id)
    response = console.post(a, f"/console/tickets/{ticket.id}/resolve")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/queue?msg=resolved"
    assert status_of(console, ticket.id).status == "resolved"
    assert len(internal_events(console, "handoff_resolved")) == 1
    received = wait_until(
        lambda: [m for m in rasa.received if m.message == "/check_status"],
        what="the bot told to re-read the status",
    )
    assert received[0].metadata.get("internal") == "handoff_resolved"
    again = console.post(a, f"/console/tickets/{ticket.id}/resolve")
    assert again.status_code == 409
    assert console.get(a, "/console/api/queue").json()["tickets"] == []
    [event] = audit_events(console, "resolve")
    assert event.ticket_id == ticket.id and event.agent_id == andi.id


def test_reveal_returns_the_clear_value_and_is_audited(console: Console) -> None:
    andi = console.agent("andi")
    a = console.login(andi)
    applicant = console.applicant()
    ticket = console.ticket(applicant_id=applicant)
    page = console.get(a, f"/console/tickets/{ticket.id}")
    assert page.status_code == 200
    for clear in (NIK, KK, SMS_PHONE, "budi.santoso@example.com"):
        assert clear not in page.text
    assert "3174********0001" in page.text
    assert "bu***@example.com" in page.text
    assert "Nama, tanggal lahir atau KK tidak cocok" not in page.text
    assert "tidak cocok dengan Dukcapil" in page.text  # the NIK failure reason
    assert console.post(a, f"/console/tickets/{ticket.id}/claim").status_code < 400
    for field, clear in (("nik", NIK), ("kk_number", KK), ("phone", SMS_PHONE)):
        response = console.post_json(
            a, f"/console/tickets/{ticket.id}/reveal", {"field": field}
        )
        assert response.status_code == 200
        assert response.json() == {"field": field, "value": clear}
    events = audit_events(console, "reveal")
    assert [e.target for e in events] == [
        f"applicant:{applicant} field:nik",
        f"applicant:{applicant} field:kk_number",
        f"applicant:{applicant} field:phone",
    ]
    assert all(e.agent_id == andi.id and e.ticket_id == ticket.id for e in events)
    refused = console.post_json(
        a, f"/console/tickets/{ticket.id}/reveal", {"field": "full_name"}
    )
    assert refused.status_code == 400
    assert len(audit_events(console, "reveal")) == 3


def test_an_agent_reveals_only_on_a_ticket_they_took(console: Console) -> None:
    a = console.login(console.agent("andi"))
    ticket = console.ticket(applicant_id=console.applicant())

    refused = console.post_json(
        a, f"/console/tickets/{ticket.id}/reveal", {"field": "nik"}
    )

    assert refused.status_code == 403
    assert NIK not in refused.text
    assert audit_events(console, "reveal") == []
    supervisor = console.login(console.agent("sari", role="supervisor"))
    allowed = console.post_json(
        supervisor, f"/console/tickets/{ticket.id}/reveal", {"field": "nik"}
    )
    assert allowed.status_code == 200 and allowed.json()["value"] == NIK


def register_someone_else(console: Console, phone: str = SMS_PHONE) -> int:
    """Another person registers from `phone` (its SMS identity now theirs: the
    number was recycled, the former owner's link dropped)."""

    def work(session: Any) -> int:
        former = owner_of(session, "sms", phone)
        if former is not None:
            unlink_identity(session, get_or_create_identity(session, "sms", phone).id)
        applicant = register_applicant(
            session,
            nik=OTHER_NIK,
            kk_number=OTHER_KK,
            full_name="Siti Rahayu",
            birth_date=date(1995, 2, 3),
            email="siti.rahayu@example.com",
            phone=phone,
            policy_version="2020",
        )
        identity = get_or_create_identity(session, "sms", phone)
        link_identity(session, identity.id, applicant.id, LINK_PHONE)
        return int(applicant.id)

    return int(console.run(work))


def test_reveal_and_panel_do_not_follow_the_number_to_a_new_owner(
    console: Console,
) -> None:
    """The review's attack: an agent handled a ticket; once it is resolved,
    someone else registers from that number; the old ticket shows nothing of
    them and reveals nothing."""
    a = console.login(console.agent("andi"))
    ticket = console.ticket(texts=("saya belum daftar, mau tanya",))
    claim(console, a, ticket.id)
    assert console.post(a, f"/console/tickets/{ticket.id}/resolve").status_code == 303
    register_someone_else(console)

    page = console.get(a, f"/console/tickets/{ticket.id}")
    assert page.status_code == 200
    assert "Siti Rahayu" not in page.text and "3273********0002" not in page.text
    for field in ("nik", "kk_number", "birth_date", "email", "phone"):
        response = console.post_json(
            a, f"/console/tickets/{ticket.id}/reveal", {"field": field}
        )
        assert response.status_code in (403, 404), field
        assert OTHER_NIK not in response.text and "siti" not in response.text
    assert audit_events(console, "reveal") == []


def test_an_agent_reveals_only_while_the_ticket_is_active(console: Console) -> None:
    a = console.login(console.agent("andi"))
    applicant = console.applicant()
    ticket = console.ticket(applicant_id=applicant)
    claim(console, a, ticket.id)
    url = f"/console/tickets/{ticket.id}/reveal"
    assert console.post_json(a, url, {"field": "nik"}).json()["value"] == NIK
    assert console.post(a, f"/console/tickets/{ticket.id}/resolve").status_code == 303
    refused = console.post_json(a, url, {"field": "nik"})
    assert refused.status_code == 403 and NIK not in refused.text
    register_someone_else(console)
    page = console.get(a, f"/console/tickets/{ticket.id}")
    assert "Budi Santoso" in page.text and "Siti Rahayu" not in page.text
    supervisor = console.login(console.agent("sari", role="supervisor"))
    allowed = console.post_json(supervisor, url, {"field": "nik"})
    assert allowed.status_code == 200 and allowed.json()["value"] == NIK
    events = audit_events(console, "reveal")
    assert [(e.agent_id, e.target) for e in events] == [
        (a.agent.id, f"applicant:{applicant} field:nik"),
        (supervisor.agent.id, f"applicant:{applicant} field:nik"),
    ]


def test_hostile_text_is_inert_in_the_page_and_the_json(console: Console) -> None:
    andi = console.agent("andi")
    a = console.login(andi)
    ticket = console.ticket(texts=HOSTILE)
    note = console.post(a, f"/console/tickets/{ticket.id}/notes", {"text": HOSTILE[0]})
    assert note.status_code == 303
    page = console.get(a, f"/console/tickets/{ticket.id}")
    for raw in HOSTILE:
        assert raw not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in page.text
    response = console.get(a, f"/console/api/tickets/{ticket.id}")
    assert response.headers["content-type"].startswith("application/json")
    assert "<" not in response.text and ">" not in response.text
    state = response.json()
    assert [t["text"] for t in state["turns"]] == list(HOSTILE)
    assert [n["text"] for n in state["notes"]] == [HOSTILE[0]]
    assert json.loads(response.text) == state


def test_the_ticket_json_only_changes_with_its_version(console: Console) -> None:
    a = console.login(console.agent("andi"))
    ticket = console.ticket()
    first = console.get(a, f"/console/api/tickets/{ticket.id}").json()
    same = console.get(
        a, f"/console/api/tickets/{ticket.id}", params={"v": first["version"]}
    ).json()
    assert same["unchanged"] is True and "turns" not in same
    console.post(a, f"/console/tickets/{ticket.id}/notes", {"text": "cek KK"})
    changed = console.get(
        a, f"/console/api/tickets/{ticket.id}", params={"v": first["version"]}
    ).json()
    assert changed["version"] != first["version"]
    assert [n["text"] for n in changed["notes"]] == ["cek KK"]


def test_a_missing_ticket_is_not_found(console: Console) -> None:
    a = console.login(console.agent("andi"))
    assert console.get(a, "/console/tickets/999").status_code == 404
    assert console.get(a, "/console/api/tickets/999").status_code == 404
    assert console.post(a, "/console/tickets/999/claim").status_code == 404


def test_personal_data_typed_in_the_chat_is_masked_in_the_transcript(
    console: Console,
) -> None:
    a = console.login(console.agent("andi"))
    ticket = console.ticket(
        texts=(
            f"NIK saya {NIK}",
            "KK 3174 0101 2000 0001",
            "email saya budi.santoso@example.com",
            "hp 0812-3456-7890 ya, gelombang 3",
        )
    )
    page = console.get(a, f"/console/tickets/{ticket.id}")
    state = console.get(a, f"/console/api/tickets/{ticket.id}").json()
    texts = [turn["text"] for turn in state["turns"]]
    for clear in (NIK, KK, "3174 0101 2000 0001", "budi.santoso@", "3456-7890"):
        assert clear not in page.text and all(clear not in t for t in texts), clear
    assert texts == [
        "NIK saya 3174********0001",
        "KK 3174********0001",
        "email saya bu***@example.com",
        "hp +62812*****890 ya, gelombang 3",
    ]
    assert "3174********0001" in page.text


REVIEW_TEXTS = (
    "nik 3174  0115  0890  0001",
    "kk 3271 - 0512 - 0395 - 0002",
    "NIK saya 3174011508\n900001",
    "hp (0812) 3456-7890",
    "3174\t011508900001",
    "lahir 15-08-1990",
    "tgl lahir 15 agustus 1990",
    "Apakah 16-08-1990 sudah benar?",
)


def test_personal_data_in_any_spacing_is_masked_for_an_agent_who_has_not_claimed(
    console: Console,
) -> None:
    """The review's examples: spacing, line breaks, tabs, brackets and dates."""
    a = console.login(console.agent("andi"))
    ticket = console.ticket(texts=REVIEW_TEXTS)
    page = console.get(a, f"/console/tickets/{ticket.id}")
    api = console.get(a, f"/console/api/tickets/{ticket.id}")
    texts = [turn["text"] for turn in api.json()["turns"]]
    assert texts == [
        "nik 3174********0001",
        "kk 3271********0002",
        "NIK saya 3174********0001",
        "hp +62812*****890",
        "3174********0001",
        "lahir **-**-****",
        "tgl lahir **-**-****",
        "Apakah **-**-**** sudah benar?",
    ]
    for body in (page.text, api.text):
        assert "0890" not in body and "0395" not in body and "3456" not in body
        assert "1990" not in body and "agustus" not in body
        assert "011508" not in body.replace("\\t", "").replace("\\n", "")


def test_a_closed_ticket_shows_only_the_conversation_up_to_its_end(
    console: Console,
) -> None:
    andi, budi = console.agent("andi"), console.agent("budi")
    a, b = console.login(andi), console.login(budi)
    first = console.ticket(texts=("tolong, NIK saya ditolak",))
    claim(console, a, first.id)
    assert console.post(a, f"/console/tickets/{first.id}/resolve").status_code == 303
    console.conversation(SMS_PHONE, texts=("saya ada keluhan baru untuk petugas",))
    second = console.run(
        lambda s: tickets.open_ticket(s, first.conversation_id, "complaint")[0]
    )
    claim(console, b, second.id)
    console.run(lambda s: tickets.add_note(s, second.id, budi.id, "cek saja"))
    assert console.get(b, f"/console/api/tickets/{second.id}").status_code == 200
    assert console.get(a, f"/console/api/tickets/{second.id}").status_code == 403
    old = console.get(a, f"/console/api/tickets/{first.id}").json()
    assert [t["text"] for t in old["turns"]] == ["tolong, NIK saya ditolak"]
    page = console.get(a, f"/console/tickets/{first.id}")
    assert page.status_code == 200
    assert "keluhan baru" not in page.text
