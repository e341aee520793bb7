"""Announcing a batch of 164,000 members: selection, pacing, live replies, exactly once.

Usage: python -m bench.announce [--members N] [--opted-out SHARE]
       [--telegram-rate R] [--sms-rate R] [--chatters C] [--no-kill]
       [--database-url URL] [--redis-url URL] [--timeout S]

On a PostgreSQL database created for the run (and dropped after it), N members
(default 164,000; half SMS, half Telegram, half on policy 2020 and half on
2023, a share opted out with STOP) join a batch with a quarter as many places.
The real selection and publication run and are timed. Two gateway processes
(`python -m bot`, sharing their pacing through Redis) with the real
python-telegram-bot and twilio clients talk to local fakes of both providers
(tests/fakes); a fake Rasa answers at once. While the announcement goes out,
a few simulated people chat on Telegram (each waits for the answer before
typing again) and their reply latency is measured, also for a while before the
publication (the baseline). Halfway through, one gateway is killed with
SIGKILL and started again. At the end, every reachable member must have
received exactly one message on their channel: 0 lost, 0 duplicated, 0 sent
to opted-out members.

Every Telegram member's chat holds one earlier message from the bot with its
id stored (they registered through the bot), as in production: so a send cut
off by the kill is looked up in the chat before it is repeated
(`bot.channels.telegram_lookup`). The providers' limits can be set above
production's (Telegram 30/s, Twilio 10/s per number) to keep the run short: the
report says which were used. Traffic goes to 127.0.0.1 only; every wait is
bounded by --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from bench.gateway import (
    RESULTS,
    TELEGRAM_PATH,
    TELEGRAM_SECRET,
    Message,
    _make_fakes,
    _telegram_update,
    clean_env,
    database,
    free_port,
    gateway_env,
    machine,
    percentile,
    process_cpu,
    start_process,
    stop_process,
)
from bot.channels.base import REQUEST_IN_FLIGHT

DEFAULT_MEMBERS = 164_000
SMS, TELEGRAM = "sms", "telegram"
TELEGRAM_BASE = 800_000_000
CHATTER_BASE = 900_000_000
PSEUDONYM_KEY = "bench-announce-pseudonym-key-0123456789abcdef"
CHUNK = 5000
PRIOR_TEXT = "Pendaftaranmu sudah kami terima."
RESULT_MARK = "Gelombang"


def sms_address(i: int) -> str:
    """Member i's phone number (even members are on SMS)."""
    return f"+62812{i:08d}"


def telegram_address(i: int) -> str:
    """Member i's Telegram chat id (odd members)."""
    return str(TELEGRAM_BASE + i)


def address_of(i: int) -> tuple[str, str]:
    """Member i's channel and address."""
    return (SMS, sms_address(i)) if i % 2 == 0 else (TELEGRAM, telegram_address(i))


def opted_out(i: int, share: float) -> bool:
    """Whether member i sent STOP (spread evenly over both channels)."""
    if share <= 0:
        return False
    every = max(1, round(1 / share))
    return (i // 2) % every == every - 1


@dataclass
class Population:
    """What was seeded."""

    batch_id: int
    members: int
    reachable: dict[tuple[str, str], int] = field(default_factory=dict)
    """(channel, address) -> member, for members who did not opt out."""
    stopped: set[tuple[str, str]] = field(default_factory=set)


def seed(url: str, members: int, share: float, telegram: Any) -> Population:
    """Schema, a batch and its members (bulk inserts), each Telegram member's
    earlier message from the bot (in the database and in the fake's chat)."""
    from sqlalchemy import insert, text

    from bot.db import make_engine
    from bot.messages.models import Conversation, OutboxMessage
    from bot.messages.pseudonym import pseudonym
    from bot.registry.models import (
        Applicant,
        Batch,
        BatchMembership,
        ChannelIdentity,
        RegistrationStep,
    )
    from bot.schema import upgrade
    from tests.fakes.telegram_api import BOT_USER

    upgrade(url)
    now = datetime.utcnow().replace(microsecond=0)
    engine = make_engine(url)
    population = Population(batch_id=1, members=members)
    try:
        with engine.begin() as db:
            db.execute(
                insert(Batch.__table__).values(
                    id=1,
                    number=1,
                    opens_at=now - timedelta(days=2),
                    closes_at=now + timedelta(days=1),
                    quota=members,
                    joined_count=members,
                    created_at=now,
                )
            )
        for start in range(0, members, CHUNK):
            ids = range(start, min(members, start + CHUNK))
            applicants, steps, identities, convs, joins, prior = [], [], [], [], [], []
            for i in ids:
                key = i + 1
                channel, address = address_of(i)
                stopped = opted_out(i, share)
                if stopped:
                    population.stopped.add((channel, address))
                else:
                    population.reachable[(channel, address)] = i
                applicants.append(
                    {
                        "id": key,
                        "nik": f"3174{i:012d}",
                        "kk_number": f"3175{i:012d}",
                        "full_name": f"Peserta {i}",
                        "birth_date": date(1990, 1, 1),
                        "policy_version": "2020" if i % 4 < 2 else "2023",
                        "status": "registered",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                steps.append(
                    {
                        "applicant_id": key,
                        "step": "nik",
                        "status": "done",
                        "started_at": now,
                        "updated_at": now,
                        "completed_at": now,
                    }
                )
                identities.append(
                    {
                        "id": key,
                        "channel": channel,
                        "external_id": address,
                        "applicant_id": key,
                        "linked_at": now,
                        "link_method": "registration",
                        "created_at": now,
                    }
                )
                convs.append(
                    {
                        "id": key,
                        "channel": channel,
                        "address": address,
                        "pseudonym": pseudonym(PSEUDONYM_KEY, channel, address),
                        "simulated": False,
                        "opted_out": stopped,
                        "state": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                joins.append(
                    {
                        "applicant_id": key,
                        "batch_id": 1,
                        "joined_at": now,
                        "result": "pending",
                    }
                )
                if channel == TELEGRAM:
                    telegram._new_message(address, BOT_USER, PRIOR_TEXT, {})
                    prior.append(
                        {
                            "conversation_id": key,
                            "seq": 0,
                            "body": {"text": PRIOR_TEXT},
                            "author": "bot",
                            "status": "sent",
                            "attempts": 1,
                            "next_attempt_at": now,
                            "provider_message_id": "1",
                            "created_at": now,
                            "sent_at": now,
                            "updated_at": now,
                        }
                    )
            with engine.begin() as db:
                for table, rows in (
                    (Applicant.__table__, applicants),
                    (RegistrationStep.__table__, steps),
                    (ChannelIdentity.__table__, identities),
                    (Conversation.__table__, convs),
                    (BatchMembership.__table__, joins),
                    (OutboxMessage.__table__, prior),
                ):
                    if rows:
                        db.execute(insert(table), rows)
        with engine.begin() as db:
            for table in ("applicant", "channel_identity", "conversation", "batch"):
                query = (
                    "SELECT setval(pg_get_serial_sequence(:t, 'id'),"
                    " (SELECT max(id) FROM {}))"
                )
                db.execute(text(query.format(table)), {"t": table})
    finally:
        engine.dispose()
    return population


def select_and_publish(url: str, batch_id: int, places: int) -> dict[str, float]:
    """Close the batch, run the real selection and publication; their times."""
    from bot.db import make_engine, make_sessionmaker
    from bot.selection.lifecycle import close_batch, publish_results
    from bot.selection.selection import select_batch

    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        with sessions() as session:
            close_batch(session, batch_id, datetime.utcnow())
            session.commit()
        started = time.monotonic()
        select_batch(sessions.begin, batch_id, datetime.utcnow(), places=places)
        selected = time.monotonic()
        with sessions() as session:
            publish_results(session, batch_id, datetime.utcnow())
            session.commit()
        published = time.monotonic()
    finally:
        engine.dispose()
    return {
        "select_s": round(selected - started, 1),
        "publish_s": round(published - selected, 1),
    }


def announcement_counts(url: str, batch_id: int) -> dict[str, int]:
    """The batch's announcement rows per status."""
    from bot.db import make_engine, make_sessionmaker
    from bot.selection.announcements import message_counts

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return message_counts(session, batch_id)
    finally:
        engine.dispose()


# --- people chatting meanwhile ----------------------------------------------------


@dataclass
class Chat:
    """The latencies of the simulated people's replies."""

    baseline: list[float] = field(default_factory=list)
    during: list[float] = field(default_factory=list)
    unanswered: int = 0


CHATTER_PATIENCE = REQUEST_IN_FLIGHT + 30.0
"""Seconds a chatting person waits for an answer before counting it unanswered:
longer than the gateway waits before it resends a Telegram reply that a kill
cut off before it reached Telegram (`REQUEST_IN_FLIGHT`, 30 s: the request may still
land), plus a takeover and a send. With exactly 30 s, such a reply, answered
after 30-31 s, counted as unanswered (the announce kill test failed now and
then)."""


async def chatter(
    base_url: str,
    telegram: Any,
    person: int,
    chat: Chat,
    announcing: asyncio.Event,
    done: asyncio.Event,
    deadline: float,
) -> None:
    """One person on Telegram: a message, wait for its answer, think, again."""
    address = str(CHATTER_BASE + person)
    async with httpx.AsyncClient(base_url=base_url, timeout=10, trust_env=False) as web:
        seq = 0
        while not done.is_set() and time.monotonic() < deadline:
            seq += 1
            text = f"tanya syarat prakerja p{person} m{seq}"
            message = Message(
                index=seq,
                user=person,
                seq=seq,
                channel=TELEGRAM,
                address=address,
                text=text,
                provider_id=str(60_000_000 + person * 100_000 + seq),
            )
            body = json.dumps(_telegram_update(message)).encode()
            during = announcing.is_set()
            posted = time.monotonic()
            try:
                await web.post(
                    TELEGRAM_PATH,
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
                    },
                )
            except httpx.HTTPError:
                await asyncio.sleep(1.0)
                continue
            answered = None
            limit = time.monotonic() + CHATTER_PATIENCE
            while time.monotonic() < limit and answered is None:
                answered = telegram.answered(address, text)
                if answered is None:
                    await asyncio.sleep(0.01)
            if answered is None:
                chat.unanswered += 1
                continue
            (chat.during if during else chat.baseline).append(answered - posted)
            await asyncio.sleep(0.5)


# --- the run ------------------------------------------------------------------------


def _fakes(answer_delay: float) -> tuple[Any, Any]:
    twilio, telegram = _make_fakes(answer_delay)
    replies: dict[str, list[tuple[str, float]]] = {}
    """The chatters' replies per chat: written by the fake's thread, read by the
    chatters' loop (under the lock: a dict must not change while it is read)."""
    lock = threading.Lock()
    original = telegram._record

    def record(method: str, params: dict[str, Any], status: int) -> None:
        original(method, params, status)
        if method == "sendMessage" and status == 200:
            chat = str(params.get("chat_id"))
            if chat.isdigit() and int(chat) >= CHATTER_BASE:
                with lock:
                    replies.setdefault(chat, []).append(
                        (str(params.get("text", "")), time.monotonic())
                    )

    def answered(chat: str, text: str) -> float | None:
        with lock:
            said = list(replies.get(chat, ()))
        return next((at for reply, at in said if text in reply), None)

    telegram._record = record
    telegram.answered = answered
    return twilio, telegram


def _spawn(env: dict[str, str], log: Path, base_url: str) -> subprocess.Popen[bytes]:
    return start_process([sys.executable, "-m", "bot"], env, log, f"{base_url}/healthz")


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Seed, start, publish, kill halfway, check."""
    deadline = time.monotonic() + args.timeout
    twilio, telegram = _fakes(args.answer_delay)
    result: dict[str, Any] = {}
    with ExitStack() as stack:
        for fake in (twilio, telegram):
            fake.start()
            stack.callback(fake.stop)
        url, kind = stack.enter_context(
            database(args.database_url, work, prefix="h1_bench_announce_")
        )
        started = time.monotonic()
        population = seed(url, args.members, args.opted_out, telegram)
        result["seed_s"] = round(time.monotonic() - started, 1)
        rasa_port = free_port()
        rasa_url = f"http://127.0.0.1:{rasa_port}"
        rasa = start_process(
            [sys.executable, "-m", "bench.gateway", "--serve-fake-rasa",
             str(rasa_port), "--rasa-delay-ms", "0"],
            clean_env(), work / "rasa.log", f"{rasa_url}/status",
        )  # fmt: skip
        stack.callback(stop_process, rasa)
        gateways: list[dict[str, Any]] = []
        for name in ("a", "b"):
            port = free_port()
            env = gateway_env(work / name, url, port, rasa_url, twilio, telegram)
            env.update(
                {
                    "PSEUDONYM_KEY": PSEUDONYM_KEY,
                    "TELEGRAM_MESSAGES_PER_SECOND": str(args.telegram_rate),
                    "TWILIO_MESSAGES_PER_SECOND": str(args.sms_rate),
                }
            )
            if args.redis_url:
                env["REDIS_URL"] = args.redis_url
            (work / name).mkdir(exist_ok=True)
            base = env["PUBLIC_BASE_URL"]
            proc = _spawn(env, work / f"gateway-{name}.log", base)
            gateways.append({"env": env, "base": base, "proc": proc, "name": name})
        stack.callback(lambda: [stop_process(g["proc"]) for g in gateways])
        result["machine"] = machine(kind)
        result["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
        cpu_before = {g["name"]: process_cpu(g["proc"].pid) for g in gateways}
        chat = Chat()
        timeline = asyncio.run(
            _announce(args, url, population, gateways, telegram, twilio, chat, work,
                      deadline)
        )  # fmt: skip
        result.update(timeline)
        result["gateway_cpu_s"] = {
            g["name"]: round(process_cpu(g["proc"].pid) - cpu_before[g["name"]], 1)
            for g in gateways
        }
        result["counts"] = announcement_counts(url, population.batch_id)
        result["exactly_once"] = check(population, twilio, telegram)
        result["duplicates"] = diagnose(url, population, twilio, telegram)
        result["chat"] = {
            "baseline_ms": _latency(chat.baseline),
            "during_ms": _latency(chat.during),
            "unanswered": chat.unanswered,
        }
        result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def _latency(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50) * 1000, 1),
        "p95": round(percentile(values, 95) * 1000, 1),
        "max": round(max(values, default=0.0) * 1000, 1),
    }


def _sent_counts(twilio: Any, telegram: Any) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for item in list(twilio.accepted):
        if RESULT_MARK in item.text:
            counts[(SMS, item.address)] += 1
    for item in list(telegram.accepted):
        if RESULT_MARK in item.text:
            counts[(TELEGRAM, item.address)] += 1
    return counts


def _rates(twilio: Any, telegram: Any) -> dict[str, float]:
    rates = {}
    for name, fake in ((SMS, twilio), (TELEGRAM, telegram)):
        times = sorted(a.at for a in list(fake.accepted) if RESULT_MARK in a.text)
        if len(times) > 100:
            cut = times[len(times) // 20 : -len(times) // 20]  # the steady middle
            rates[name] = round((len(cut) - 1) / max(cut[-1] - cut[0], 1e-6), 1)
    return rates


async def _announce(
    args: argparse.Namespace,
    url: str,
    population: Population,
    gateways: list[dict[str, Any]],
    telegram: Any,
    twilio: Any,
    chat: Chat,
    work: Path,
    deadline: float,
) -> dict[str, Any]:
    announcing, done = asyncio.Event(), asyncio.Event()
    people = [
        asyncio.create_task(
            chatter(
                gateways[i % 2]["base"], telegram, i, chat, announcing, done, deadline
            )
        )  # fmt: skip
        for i in range(args.chatters)
    ]
    await asyncio.sleep(args.baseline)  # the chat before the announcement
    places = max(1, args.members // 4)
    batch = population.batch_id
    times = await asyncio.to_thread(select_and_publish, url, batch, places)
    announcing.set()
    published = time.monotonic()
    expected = len(population.reachable)
    killed: dict[str, Any] = {}
    finished = None
    while time.monotonic() < deadline:
        got = sum(_sent_counts(twilio, telegram).values())
        if not killed and not args.no_kill and got >= expected * args.kill_at:
            victim = gateways[0]
            os.kill(victim["proc"].pid, signal.SIGKILL)
            victim["proc"].wait()
            killed = {"after_s": round(time.monotonic() - published, 1), "sent": got}
            name = victim["name"]
            victim["proc"] = await asyncio.to_thread(
                _spawn, victim["env"], work / f"gateway-{name}-2.log", victim["base"]
            )
            killed["restarted_after_s"] = round(
                time.monotonic() - published - killed["after_s"], 1
            )
        counts = await asyncio.to_thread(announcement_counts, url, population.batch_id)
        if counts.get("pending", 0) + counts.get("queued", 0) == 0:
            finished = time.monotonic()
            break
        await asyncio.sleep(1.0)
    done.set()
    await asyncio.gather(*people)
    took = (finished or time.monotonic()) - published
    sent = sum(_sent_counts(twilio, telegram).values())
    return {
        **times,
        "announce_s": round(took, 1),
        "finished": finished is not None,
        "messages_sent": sent,
        "overall_rate": round(sent / took, 1) if took else 0.0,
        "rate_by_channel": _rates(twilio, telegram),
        "kill": killed or None,
    }


def check(population: Population, twilio: Any, telegram: Any) -> dict[str, int]:
    """Exactly once at the providers: each reachable member one message."""
    counts = _sent_counts(twilio, telegram)
    lost = sum(1 for who in population.reachable if counts.get(who, 0) == 0)
    duplicated = sum(1 for who in population.reachable if counts.get(who, 0) > 1)
    to_opted_out = sum(1 for who in population.stopped if counts.get(who, 0) > 0)
    strangers = sum(
        1
        for who in counts
        if who not in population.reachable and who not in population.stopped
    )
    return {
        "expected": len(population.reachable),
        "opted_out": len(population.stopped),
        "lost": lost,
        "duplicated": duplicated,
        "sent_to_opted_out": to_opted_out,
        "to_strangers": strangers,
    }


def diagnose(
    url: str, population: Population, twilio: Any, telegram: Any, most: int = 20
) -> list[dict[str, Any]]:
    """For up to `most` members who got their result more than once: when each
    copy reached the fake, and their outbox and announcement rows (by member
    number, no address)."""
    from sqlalchemy import select

    from bot.db import make_engine
    from bot.messages.models import Conversation, OutboxMessage
    from bot.selection.models import AnnouncementMessage

    counts = _sent_counts(twilio, telegram)
    twice = [who for who, n in counts.items() if n > 1][:most]
    if not twice:
        return []
    arrivals: dict[tuple[str, str], list[float]] = {}
    for channel, fake in ((SMS, twilio), (TELEGRAM, telegram)):
        for item in list(fake.accepted):
            if RESULT_MARK in item.text and (channel, item.address) in twice:
                arrivals.setdefault((channel, item.address), []).append(item.at)
    out, convs = OutboxMessage.__table__, Conversation.__table__
    messages = AnnouncementMessage.__table__
    found = []
    engine = make_engine(url)
    try:
        with engine.connect() as db:
            for channel, address in twice:
                conv = db.execute(
                    select(convs.c.id).where(
                        convs.c.channel == channel, convs.c.address == address
                    )
                ).scalar_one()
                rows = db.execute(
                    select(
                        out.c.id, out.c.seq, out.c.priority, out.c.status,
                        out.c.reconciled, out.c.attempts, out.c.provider_message_id,
                        out.c.last_error, out.c.created_at, out.c.sent_at,
                        out.c.lease_owner,
                    ).where(out.c.conversation_id == conv).order_by(out.c.id)
                ).all()  # fmt: skip
                announced = db.execute(
                    select(
                        messages.c.id, messages.c.status, messages.c.outbox_id,
                        messages.c.attempts,
                    ).where(messages.c.applicant_id == conv)
                ).all()  # fmt: skip
                found.append(
                    {
                        "member": population.reachable.get((channel, address)),
                        "channel": channel,
                        "arrived_at": [round(t, 3) for t in arrivals[channel, address]],
                        "outbox": [dict(row._mapping) for row in rows],
                        "announcement": [dict(row._mapping) for row in announced],
                    }
                )
    finally:
        engine.dispose()
    return found


def markdown(result: dict[str, Any], args: argparse.Namespace) -> str:
    """The report."""
    once = result["exactly_once"]
    ok = once["lost"] == once["duplicated"] == once["sent_to_opted_out"] == 0
    share = 0.8
    lines = [
        f"## bench-announce: {args.members:,} members",
        "",
        f"- machine: {result['machine'].get('cpu_model')}, "
        f"{result['machine'].get('usable_cpus')} cores, "
        f"{result['machine'].get('database')}; "
        f"load average at start {result['load_average_at_start']}, "
        f"at end {result['load_average_at_end']}",
        f"- configured limits: Telegram {args.telegram_rate}/s, Twilio "
        f"{args.sms_rate}/s per number (production: 30/s and 10/s; set higher here "
        f"to keep the run short); the announcement is fed at {share:.0%} of each",
        f"- seed {result['seed_s']} s; selection {result['select_s']} s; "
        f"publication {result['publish_s']} s",
        f"- announcement: {result['messages_sent']:,} messages in "
        f"{result['announce_s']} s ({result['overall_rate']}/s overall; by channel "
        f"{result['rate_by_channel']}), finished: {result['finished']}",
        f"- kill: {result['kill']}",
        f"- rows: {result['counts']}",
        f"- gateway CPU seconds: {result['gateway_cpu_s']}",
        f"- live chat reply latency (ms), before: {result['chat']['baseline_ms']}; "
        f"during: {result['chat']['during_ms']}; unanswered "
        f"{result['chat']['unanswered']}",
        f"- exactly once: {once} -> {'OK' if ok else '**FAILED**'}",
    ]
    return "\n".join(lines)


def main() -> None:
    """Parse the options, run, print and save the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=DEFAULT_MEMBERS)
    parser.add_argument("--opted-out", type=float, default=0.05)
    parser.add_argument("--telegram-rate", type=int, default=150)
    parser.add_argument("--sms-rate", type=int, default=150)
    parser.add_argument("--chatters", type=int, default=4)
    parser.add_argument("--baseline", type=float, default=10.0)
    parser.add_argument("--kill-at", type=float, default=0.4)
    parser.add_argument("--no-kill", action="store_true")
    parser.add_argument(
        "--answer-delay",
        type=float,
        default=0.2,
        help="seconds the fake providers hold each answer after taking the request",
    )
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/1")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument(
        "--keep", metavar="DIR", help="copy the processes' logs to DIR after the run"
    )
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-announce-") as tmp:
        try:
            result = run(args, Path(tmp))
        finally:
            if args.keep:
                shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
                print(f"Logs kept in {args.keep}", file=sys.stderr)
    result["parameters"] = vars(args)
    result["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "announce.json").write_text(json.dumps(result, indent=2, default=str))
    print(markdown(result, args))
    for member in result["duplicates"]:
        print(json.dumps(member, default=str), file=sys.stderr)
    once = result["exactly_once"]
    if once["lost"] or once["duplicated"] or once["sent_to_opted_out"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
