"""The soak's checks (bench/soak/checks.py) on small made-up observations: each
counts its defect, and a clean run counts nothing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from bench.soak.checks import analyse
from bench.soak.stack import Delivery
from bench.soak.traffic import Kill, Sent, Traffic
from bot.gateway.burst import HELD
from bot.gateway.wait_notice import wait_text

PHONE, CHAT = "+6281300000001", "710000001"


NOW = datetime.now(timezone.utc).replace(tzinfo=None)
TIMES = {"received_at": NOW, "processed_at": NOW, "attempts": 1}
"""The rows' times and attempts (only the slow-recovery timeline reads them)."""
SENT = {"created_at": NOW, "updated_at": NOW, "attempts": 1, "last_error": None}


def _rows() -> dict[str, Any]:
    """Two conversations; inbox 1-2 (SMS), 3 (Telegram); one outbox row each,
    plus a second reply to inbox 2."""
    inbox = [
        SimpleNamespace(id=1, channel="sms", provider_id="SMa", status="done",
                        conversation_id=1, last_error=None, **TIMES),
        SimpleNamespace(id=2, channel="sms", provider_id="SMb", status="done",
                        conversation_id=1, last_error=None, **TIMES),
        SimpleNamespace(id=3, channel="telegram", provider_id="9:70", status="done",
                        conversation_id=2, last_error=None, **TIMES),
    ]  # fmt: skip
    outbox = [
        SimpleNamespace(id=10, conversation_id=1, inbox_id=1, status="sent",
                        body={"kind": "sms", "text": "satu"}, reconciled=None, **SENT),
        SimpleNamespace(id=11, conversation_id=2, inbox_id=3, status="sent",
                        body={"kind": "message", "text": "halo"}, reconciled=None,
                        **SENT),
        SimpleNamespace(id=12, conversation_id=1, inbox_id=2, status="sent",
                        body={"kind": "sms", "text": "dua"}, reconciled=None, **SENT),
        SimpleNamespace(id=13, conversation_id=1, inbox_id=2, status="sent",
                        body={"kind": "sms", "text": "tiga"}, reconciled=None, **SENT),
    ]  # fmt: skip
    return {
        "conversations": {1: ("sms", PHONE), 2: ("telegram", CHAT)},
        "inbox": inbox,
        "outbox": outbox,
        "applicants": {"3174011508900001": 1},
        "memberships": {1: 1},
        "joined_count": 1,
        "email_codes": {"a@gmail.com": 1},
        "tickets": {2: 1},
        "rasa_turns": Counter({"1": 1, "2": 1, "3": 1}),
    }


def _traffic() -> Traffic:
    traffic = Traffic(started=0.0, ended=10.0)
    traffic.sent = [
        Sent(0, 0, "sms", PHONE, "x", "SMa", "email", status=200),
        Sent(0, 1, "sms", PHONE, "y", "SMb", "", status=200),
        Sent(1, 0, "telegram", CHAT, "z", "70", "handoff", status=200),
    ]
    traffic.email_requests["a@gmail.com"] = 1
    traffic.handoff_requests[CHAT] = 1
    return traffic


def _deliveries() -> list[Delivery]:
    return [
        Delivery(1.0, "sms", PHONE, "satu"),
        Delivery(1.5, "telegram", CHAT, "halo"),
        Delivery(2.0, "sms", PHONE, "dua"),
        Delivery(2.1, "sms", PHONE, "tiga"),
    ]


def _checks(**changes: Any) -> dict[str, int]:
    rows = {**_rows(), **changes.pop("rows", {})}
    deliveries = changes.pop("deliveries", _deliveries())
    mail = changes.pop("mail", Counter({"a@gmail.com": 1}))
    result = analyse(changes.pop("traffic", _traffic()), deliveries, rows, mail)
    checks: dict[str, int] = result["checks"]
    return checks


def test_a_clean_run_counts_nothing() -> None:
    assert not any(_checks().values())


def test_a_reply_delivered_twice_is_a_duplicate() -> None:
    again = [*_deliveries(), Delivery(3.0, "sms", PHONE, "dua")]
    assert _checks(deliveries=again)["replies_duplicated"] == 1


def test_a_message_without_a_delivered_reply_is_lost() -> None:
    without = [d for d in _deliveries() if d.address != CHAT]
    assert _checks(deliveries=without)["messages_lost"] == 1


def test_a_message_never_acknowledged_is_lost() -> None:
    traffic = _traffic()
    traffic.sent.append(Sent(1, 1, "telegram", CHAT, "w", "71", "", status=0))
    assert _checks(traffic=traffic)["messages_lost"] == 1


def test_replies_in_another_order_than_stored_are_violations() -> None:
    swapped = _deliveries()
    swapped[0], swapped[2] = swapped[2], swapped[0]  # "dua" before "satu"
    assert _checks(deliveries=swapped)["order_violations"] == 1


def test_a_later_message_answered_first_is_a_violation() -> None:
    rows = _rows()  # replies stored in order, but "satu" answers the later message
    rows["outbox"][0].inbox_id = 2
    rows["outbox"][2].inbox_id = rows["outbox"][3].inbox_id = 1
    assert _checks(rows=rows)["order_violations"] == 2  # "dua" and "tiga"


def test_side_effects_beyond_the_requests_are_duplicates() -> None:
    checks = _checks(
        mail=Counter({"a@gmail.com": 2}),
        rows={
            "email_codes": {"a@gmail.com": 2},
            "tickets": {2: 2},
            "memberships": {1: 1},
            "joined_count": 2,
        },
    )
    assert checks["emails_duplicated"] == 1
    assert checks["email_codes_duplicated"] == 1
    assert checks["tickets_duplicated"] == 1
    assert checks["memberships_duplicated"] == 1


def test_recovery_is_measured_from_the_kill_to_each_waiting_person() -> None:
    traffic = _traffic()
    at_rows = NOW.replace(tzinfo=timezone.utc).timestamp()  # the rows' time
    waiting = {PHONE: 0.4, CHAT: 0.4}
    traffic.kills.append(Kill("gateway", "gateway1", 0.5, waiting, wall=at_rows))
    recovery = analyse(traffic, _deliveries(), _rows(), Counter({"a@gmail.com": 1}))
    (kill,) = recovery["recovery"]["gateway"]
    assert (kill["first_s"], kill["worst_s"], kill["never_answered"]) == (0.5, 1.0, 0)
    # the slowest person's (the Telegram chat's) rows, without any text
    timeline = kill["worst_timeline"]
    assert [line.split()[:2] for line in timeline] == [["in", "3"], ["out", "11"]]
    assert not any("halo" in line for line in timeline)


def test_a_person_answered_just_before_the_kill_was_not_waiting_for_it() -> None:
    traffic = _traffic()  # the chat's answer came at 1.5, its driver looked later
    traffic.kills.append(Kill("gateway", "gateway1", 1.6, {CHAT: 1.2, PHONE: 1.8}))
    recovery = analyse(traffic, _deliveries(), _rows(), Counter({"a@gmail.com": 1}))
    (kill,) = recovery["recovery"]["gateway"]
    assert (kill["first_s"], kill["never_answered"]) == (0.4, 0)  # PHONE's "dua"


def test_a_message_answered_with_a_later_one_of_its_burst_is_not_lost() -> None:
    rows = _rows()  # inbox 1's answer was held and went out with inbox 2's
    rows["inbox"][0].last_error = HELD
    rows["outbox"][0].inbox_id = 2
    assert _checks(rows=rows)["messages_lost"] == 0


def test_a_held_message_whose_burst_answer_never_arrived_is_lost() -> None:
    rows = _rows()
    rows["inbox"][0].last_error = HELD
    rows["outbox"][0].inbox_id = 2
    without = [d for d in _deliveries() if d.text not in ("satu", "dua", "tiga")]
    assert _checks(rows=rows, deliveries=without)["messages_lost"] == 2


def test_a_message_done_without_a_note_or_a_reply_is_lost() -> None:
    rows = _rows()  # inbox 1 has no reply of its own and no burst note
    rows["outbox"][0].inbox_id = 2
    assert _checks(rows=rows)["messages_lost"] == 1


def test_wait_notices_do_not_count_as_answers_for_recovery() -> None:
    traffic = _traffic()
    traffic.kills.append(Kill("gateway", "gateway1", 0.5, {PHONE: 0.4}))
    notice = Delivery(0.6, "sms", PHONE, wait_text(60))
    deliveries = sorted([*_deliveries(), notice], key=lambda d: d.at)
    result = analyse(traffic, deliveries, _rows(), Counter({"a@gmail.com": 1}))
    (kill,) = result["recovery"]["gateway"]
    assert kill["first_s"] == 0.5  # "satu" at 1.0, not the notice at 0.6


def test_sends_in_doubt_are_counted_by_channel_and_ending() -> None:
    rows = _rows()
    rows["outbox"][1].reconciled = "found"
    result = analyse(_traffic(), _deliveries(), rows, Counter({"a@gmail.com": 1}))
    assert result["details"]["sends_in_doubt"] == {"telegram found": 1}
