"""The checks (lost, duplicated, out of order, side effects), the recovery
times, and the planted defects that prove the checks."""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.gateway import (
    SMS,
    TELEGRAM,
    percentile,
)
from bench.soak.stack import (
    TWILIO_FROM,
    TWILIO_SID,
    TWILIO_TOKEN,
    Deliveries,
    Delivery,
)
from bench.soak.traffic import (
    Traffic,
)
from bot.gateway.wait_notice import is_notice


def database_rows(db_url: str) -> dict[str, Any]:
    """What the gateway and the actions stored: conversations, inbox, outbox, and
    the side effects."""
    from sqlalchemy import func, select

    from bot.db import make_engine
    from bot.handoff.models import Ticket
    from bot.messages.models import Conversation, InboxMessage, OutboxMessage
    from bot.registry.models import Applicant, Batch, BatchMembership, EmailCode

    engine = make_engine(db_url)
    try:
        with engine.connect() as c:
            conversations = {
                row.id: (row.channel, row.address)
                for row in c.execute(select(Conversation.id, Conversation.channel,
                                            Conversation.address))
            }  # fmt: skip
            inbox = c.execute(
                select(InboxMessage.id, InboxMessage.channel, InboxMessage.provider_id,
                       InboxMessage.conversation_id, InboxMessage.status,
                       InboxMessage.last_error, InboxMessage.attempts,
                       InboxMessage.received_at, InboxMessage.processed_at)
            ).all()  # fmt: skip
            outbox = c.execute(
                select(OutboxMessage.id, OutboxMessage.conversation_id,
                       OutboxMessage.inbox_id, OutboxMessage.body,
                       OutboxMessage.status, OutboxMessage.reconciled,
                       OutboxMessage.attempts, OutboxMessage.last_error,
                       OutboxMessage.created_at, OutboxMessage.updated_at,
                       OutboxMessage.delivery_status)
                .order_by(OutboxMessage.id)
            ).all()  # fmt: skip
            applicants = c.execute(
                select(Applicant.nik, func.count()).group_by(Applicant.nik)
            ).all()
            memberships = c.execute(
                select(BatchMembership.applicant_id, func.count()).group_by(
                    BatchMembership.applicant_id
                )
            ).all()
            joined = c.execute(select(func.sum(Batch.joined_count))).scalar() or 0
            codes = c.execute(
                select(EmailCode.email, func.count()).group_by(EmailCode.email)
            ).all()
            tickets = c.execute(
                select(Ticket.conversation_id, func.count()).group_by(
                    Ticket.conversation_id
                )
            ).all()
        turns = rasa_turns(engine)
    finally:
        engine.dispose()
    return {
        "rasa_turns": turns,
        "conversations": conversations,
        "inbox": inbox,
        "outbox": outbox,
        "applicants": {nik: int(n) for nik, n in applicants},
        "memberships": {a: int(n) for a, n in memberships},
        "joined_count": int(joined),
        "email_codes": {email: int(n) for email, n in codes},
        "tickets": {conversation: int(n) for conversation, n in tickets},
    }


def sends_in_doubt(rows: dict[str, Any]) -> dict[str, int]:
    """Replies whose send had an unknown outcome (a kill or a timeout during
    the send), by channel and how it ended: "telegram found", "sms resent"..."""
    conversations = rows["conversations"]
    return dict(
        Counter(
            f"{conversations.get(r.conversation_id, ('?', ''))[0]} {r.reconciled}"
            for r in rows["outbox"]
            if r.reconciled is not None
        )
    )


def rasa_turns(engine: Any) -> Counter[str]:
    """Rasa's user turns per idempotency key (the inbox id the gateway puts in
    the message metadata), from the tracker store; empty while the gateway does
    not send one."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    keys: Counter[str] = Counter()
    try:
        with engine.connect() as c:
            rows = c.execute(text("SELECT data FROM events WHERE type_name = 'user'"))
            for (data,) in rows:
                metadata = (json.loads(data) if data else {}).get("metadata") or {}
                key = metadata.get("idempotency_key")
                if key is not None:
                    keys[str(key)] += 1
    except SQLAlchemyError:
        return keys
    return keys


def mail_counts(folder: Path) -> Counter[str]:
    """E-mails written to the outbox folder, per recipient."""
    from bot.notify.mailbox import outbox_files, read_message

    return Counter(str(read_message(path)["To"]) for path in outbox_files(folder))


def _outbox_text(channel: str, body: Any) -> str | None:
    from bot.channels.sms.gsm7 import to_gsm7

    if not isinstance(body, dict) or body.get("kind") not in ("sms", "message"):
        return None
    text = str(body.get("text") or "")
    return to_gsm7(text) if channel == SMS else text


MAX_LISTED = 30  # lost messages listed in the details
PLANTS = ("duplicate", "lost", "order", "email", "ticket")


def plant_live(
    kind: str,
    deliveries: Deliveries,
    twilio: Any,
    telegram: Any,
    mail: Path,
    db_url: str,
    rng: random.Random,
) -> str:
    """Plant a defect through the real parts, before the checks read them:
    "duplicate" sends a delivered reply again to its fake provider over HTTP,
    "email" writes a second copy of a code e-mail into the mail folder, "ticket"
    stores a second (cancelled) handoff ticket for a conversation that had one.
    What was done."""
    if kind == "duplicate":
        victim = rng.choice(deliveries.all)
        if victim.channel == SMS:
            httpx.post(
                f"{twilio.url}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json",
                data={"To": victim.address, "From": TWILIO_FROM, "Body": victim.text},
                auth=(TWILIO_SID, TWILIO_TOKEN),
            ).raise_for_status()
        else:
            httpx.post(
                f"{telegram.url}/bot{telegram.token}/sendMessage",
                data={"chat_id": victim.address, "text": victim.text},
            ).raise_for_status()
        return f"a {victim.channel} reply sent again to the fake provider"
    if kind == "email":
        from bot.notify.mailbox import outbox_files

        first = outbox_files(mail)[0]
        shutil.copy(first, first.with_name("zz-copy-" + first.name))
        return "a code e-mail written twice"
    if kind == "ticket":
        from sqlalchemy import insert, select

        from bot.db import make_engine, utcnow
        from bot.handoff.models import TICKET_CANCELLED, Ticket

        engine = make_engine(db_url)
        try:
            with engine.begin() as c:
                old = c.execute(select(Ticket).limit(1)).one()
                now = utcnow()
                c.execute(
                    insert(Ticket).values(
                        conversation_id=old.conversation_id, channel=old.channel,
                        reason=old.reason, status=TICKET_CANCELLED,
                        created_at=now, cancelled_at=now,
                    )
                )  # fmt: skip
        finally:
            engine.dispose()
        return "a second handoff ticket stored for one conversation"
    return ""


def plant_observed(
    deliveries: list[Delivery], kind: str, rng: random.Random, touched: set[str]
) -> str:
    """Plant a defect in the observed deliveries: "lost" drops every reply to one
    address, "order" swaps the first and last reply of one conversation; each in
    a conversation no other planted defect `touched` (which it then joins)."""
    if kind == "lost":
        victim = rng.choice([d for d in deliveries if d.address not in touched])
        touched.add(victim.address)
        for other in [d for d in deliveries if d.address == victim.address]:
            deliveries.remove(other)
        return f"every delivery to one {victim.channel} address dropped"
    if kind == "order":
        by_address: dict[str, list[int]] = defaultdict(list)
        for i, d in enumerate(deliveries):
            by_address[d.address].append(i)
        for address, positions in by_address.items():
            texts = {deliveries[i].text for i in positions}
            if len(texts) >= 2 and address not in touched:
                touched.add(address)
                a, b = positions[0], positions[-1]
                deliveries[a], deliveries[b] = deliveries[b], deliveries[a]
                return "first and last delivery of one conversation swapped"
    return ""


def analyse(
    traffic: Traffic, deliveries: list[Delivery], rows: dict[str, Any],
    mail: Counter[str],
) -> dict[str, Any]:  # fmt: skip
    """The checks, the recovery times and the throughput."""
    conversations = rows["conversations"]
    by_address = {address: cid for cid, (_, address) in conversations.items()}
    # Telegram updates are stored as "<bot id>:<update_id>"
    inbox_of = {
        (r.channel, r.provider_id.rsplit(":", 1)[-1]): r.id for r in rows["inbox"]
    }
    texts: dict[int, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for r in rows["outbox"]:
        channel = conversations.get(r.conversation_id, ("", ""))[0]
        text = _outbox_text(channel, r.body)
        if text is not None:
            texts[r.conversation_id][text].append(r)

    # each delivery, in the order the fakes accepted it, to the oldest outbox row
    # of its conversation with that text not delivered yet
    delivered: set[int] = set()
    answered: set[int] = set()  # inbox ids with a reply delivered
    duplicates = unmatched = violations = 0
    first_reply: dict[str, list[float]] = defaultdict(list)
    last_outbox: dict[str, int] = {}
    last_inbox: dict[str, int] = {}
    for d in deliveries:
        if not is_notice(d.text):
            first_reply[d.address].append(d.at)
        candidates = texts.get(by_address.get(d.address, -1), {}).get(d.text, [])
        row = next((r for r in candidates if r.id not in delivered), None)
        if row is None:
            if candidates:
                duplicates += 1
            else:
                unmatched += 1
            continue
        delivered.add(row.id)
        violated = row.id < last_outbox.get(d.address, 0)
        last_outbox[d.address] = max(row.id, last_outbox.get(d.address, 0))
        if row.inbox_id is not None:
            answered.add(row.inbox_id)
            violated |= row.inbox_id < last_inbox.get(d.address, 0)
            last_inbox[d.address] = max(row.inbox_id, last_inbox.get(d.address, 0))
        violations += violated

    answered |= answered_in_bursts(rows["inbox"], rows["outbox"], answered)
    sent = traffic.sent
    not_acked = [s for s in sent if s.status != 200]
    lost = [s for s in sent
            if inbox_of.get((s.channel, s.provider_id)) not in answered]  # fmt: skip
    by_channel: dict[str, dict[str, int]] = {}
    for channel in (SMS, TELEGRAM):
        mine = [s for s in sent if s.channel == channel]
        by_channel[channel] = {
            "sent": len(mine),
            "lost": sum(1 for s in lost if s.channel == channel),
        }
    # side effects
    email_dupes = sum(max(0, n - traffic.email_requests[to]) for to, n in mail.items())
    code_dupes = sum(
        max(0, n - traffic.email_requests[email])
        for email, n in rows["email_codes"].items()
    )
    applicant_dupes = sum(n - 1 for n in rows["applicants"].values() if n > 1)
    membership_dupes = sum(n - 1 for n in rows["memberships"].values() if n > 1)
    counter_drift = abs(rows["joined_count"] - sum(rows["memberships"].values()))
    address_of = {cid: address for cid, (_, address) in conversations.items()}
    ticket_dupes = sum(
        max(0, n - traffic.handoff_requests[address_of.get(cid, "")])
        for cid, n in rows["tickets"].items()
    )

    # recovery: from each kill to the first reply of each person waiting then
    recovery: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for kill in traffic.kills:
        times = []
        never = 0
        worst: tuple[float, str] | None = None
        for address, posted in kill.waiting.items():
            replies = [at for at in first_reply.get(address, []) if at >= posted]
            if replies and replies[0] < kill.at:
                continue  # answered before the kill (its driver had not looked yet)
            after = [at for at in replies if at >= kill.at]
            if after:
                times.append(after[0] - kill.at)
                worst = max(worst or (0.0, ""), (after[0] - kill.at, address))
            else:
                never += 1
        recovery[kill.kind].append({
            "target": kill.target,
            "at_s": round(kill.at - traffic.started, 1),
            "waiting": len(kill.waiting),
            "restart_ready_s": kill.ready_after_s,
            "first_s": round(min(times), 2) if times else None,
            "worst_s": round(max(times), 2) if times else None,
            "never_answered": never,
            "worst_timeline": None if worst is None else timeline(
                rows, by_address.get(worst[1], -1), kill.wall,
                kill.waiting[worst[1]] - kill.at - 1.0),
        })  # fmt: skip
    window = traffic.ended - traffic.started
    checks = {
        "messages_lost": len(lost),
        "messages_not_sent_in_time": traffic.unsent,
        "replies_duplicated": duplicates,
        "emails_duplicated": email_dupes,
        "email_codes_duplicated": code_dupes,
        "applicants_duplicated": applicant_dupes,
        "memberships_duplicated": membership_dupes + counter_drift,
        "tickets_duplicated": ticket_dupes,
        "order_violations": violations,
    }
    return {
        "checks": checks,
        "passed": not any(checks.values()),
        "details": {
            "messages_sent": len(sent),
            "not_acknowledged": len(not_acked),
            "by_channel": by_channel,
            "lost_by_kind": dict(Counter(s.kind or "text" for s in lost)),
            "lost_first": [
                {
                    "person": s.person,
                    "seq": s.seq,
                    "channel": s.channel,
                    "posted_at_s": round(s.posted_at - traffic.started, 1),
                }
                for s in lost[:MAX_LISTED]
            ],  # fmt: skip
            "replies_delivered": len(deliveries),
            "replies_unmatched": unmatched,
            "outbox_rows": len(rows["outbox"]),
            "outbox_by_status": dict(Counter(r.status for r in rows["outbox"])),
            "sends_in_doubt": sends_in_doubt(rows),
            "inbox_by_status": dict(Counter(r.status for r in rows["inbox"])),
            "email_requests": sum(traffic.email_requests.values()),
            "emails_sent": sum(mail.values()),
            "code_e-mails_missing_at_the_person": traffic.missing_codes,
            "joined_count_vs_memberships": counter_drift,
            "applicants": len(rows["applicants"]),
            "memberships": sum(rows["memberships"].values()),
            "handoff_requests": sum(traffic.handoff_requests.values()),
            "tickets": sum(rows["tickets"].values()),
            "people_timed_out": traffic.timeouts,
            "rasa_turns_with_a_key": sum(rows["rasa_turns"].values()),
            "rasa_turns_repeated": sum(n - 1 for n in rows["rasa_turns"].values()),
        },
        "recovery": dict(recovery),
        "throughput": {
            "window_s": round(window, 1),
            "messages_per_s": round(len(sent) / window, 2) if window > 0 else 0.0,
            "replies_per_s": round(len(deliveries) / window, 2) if window else 0.0,
            "post_to_first_reply_p50_ms": None,
        },
    }


def timeline(
    rows: dict[str, Any], conversation_id: int, kill_wall: float, since_s: float
) -> list[str]:
    """What the database holds of one conversation around a kill: its inbox and
    outbox rows from `since_s` (seconds from the kill: just before the person
    posted the message they waited for) on, times in seconds from the kill (no
    text: the report is for diagnosis)."""
    from datetime import datetime, timezone

    kill = datetime.fromtimestamp(kill_wall, timezone.utc).replace(tzinfo=None)

    def s(moment: Any) -> str:
        return "-" if moment is None else f"{(moment - kill).total_seconds():+.2f}"

    def after(moment: Any) -> bool:
        return bool((moment - kill).total_seconds() > since_s)

    lines = [
        (r.received_at, f"in {r.id} {r.status} attempts={r.attempts} received "
         f"{s(r.received_at)} processed {s(r.processed_at)} {r.last_error or ''}")
        for r in rows["inbox"]
        if r.conversation_id == conversation_id and after(r.received_at)
    ] + [
        (r.created_at, f"out {r.id} for {r.inbox_id} {r.status} attempts="
         f"{r.attempts} created {s(r.created_at)} updated {s(r.updated_at)} "
         f"{r.reconciled or ''} {r.last_error or ''}")
        for r in rows["outbox"]
        if r.conversation_id == conversation_id and after(r.created_at)
    ]  # fmt: skip
    return [line.rstrip() for _, line in sorted(lines)][:20]


def answered_in_bursts(
    inbox: list[Any], outbox: list[Any], answered: set[int]
) -> set[int]:
    """Inbox rows answered together with a later one (`bot.gateway.burst`): a
    row noted held or superseded counts as answered when a reply delivered to
    its conversation answers it or a later row."""
    from bot.gateway.burst import HELD, SUPERSEDED

    latest: dict[int, int] = {}  # conversation -> newest inbox id answered
    for row in outbox:
        if row.inbox_id is not None and row.inbox_id in answered:
            latest[row.conversation_id] = max(
                row.inbox_id, latest.get(row.conversation_id, 0)
            )
    return {
        row.id
        for row in inbox
        if row.last_error in (HELD, SUPERSEDED)
        and latest.get(row.conversation_id, 0) >= row.id
    }


def latencies(traffic: Traffic, deliveries: Deliveries) -> dict[str, float]:
    """Post to first answer (after it; wait notices are not answers), per
    message, p50/p95 in ms."""
    values = []
    for s in traffic.sent:
        after = [
            d.at
            for d in deliveries.to(s.address)
            if d.at >= s.posted_at and not is_notice(d.text)
        ]
        if after and s.status == 200:
            values.append(after[0] - s.posted_at)
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p95_ms": round(percentile(values, 95) * 1000, 1),
    }
