"""Registration registry under the April-2020 shape of load, in one process.

Usage: python -m bench.registration [--people N] [--threads T] [--database-url URL]
       [--quota Q] [--storm-rounds R] [--timeout S]

April 2020: 1.4 million registrations in 21 hours (about 18.5 per second on
average), 80,000 in one minute at the peak (about 1,333 per second). On a fresh
database (a SQLite file in a temporary folder, or a new database created on the
PostgreSQL server of --database-url and dropped afterwards), migrated with
`bot.schema.upgrade`, under the default policy:

1. registrations: N synthetic people (structurally valid, distinct NIKs and KK
   numbers; half SMS, half Telegram), their gateway conversations created first
   as the gateway would; T threads each run, through
   `bot.registration.desk.RegistrationDesk` as the chat does, caller ->
   give_consent -> request_email_code -> check_email_code -> submit;
2. duplicate storm: T conversations of one person submit the same NIK at once,
   R times: one applicant per NIK, the others get `nik_taken`;
3. NIK checks: `NikCheckRunner.run_once()` drains the queue with a verifier that
   answers "verified" at once (the queue's cost, not Dukcapil's);
4. batch joins: every verified applicant joins one open batch of quota Q from T
   threads (caller, then `desk.join`): exactly Q join, the others get `full`.

Measured per phase: wall time, rate, latencies (per registration and per desk
call), CPU of this process and, on a local PostgreSQL, of the server backends
connected to the benchmark's database (read from /proc). Results go to
results/bench/registration.json and a Markdown summary to stdout.
Nothing leaves 127.0.0.1; every phase is bounded by --timeout. No personal data
is printed or stored in the results (the people are synthetic anyway).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bench.gateway import machine, ms, percentile
from bot.registration.desk import Caller, Details, RegistrationDesk
from bot.verification.nik import NikCheckResult, NikRequest, result_for

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "bench"
DESCRIPTION = "Registration registry under the April-2020 shape of load."
SEED = 2020
PEAK_PER_SECOND = 80_000 / 60
AVERAGE_PER_SECOND = 1_400_000 / (21 * 3600)
PSEUDONYM_KEY = "bench-registration-pseudonym-key"
CODE_SECRET = b"bench-registration-code-secret"
LEASE_OWNER = "bench-registration"
BATCH_NUMBER = 1
SMS_BASE = 62_812_0000_0000
TELEGRAM_BASE = 700_000_000
STORM_OFFSET = 1_000_000
"""Storm people are numbered from here, apart from the registered ones."""
JOIN_GRACE = 30.0
"""Seconds past the deadline a thread may take to finish its operation."""
REGISTRATION_OPERATIONS = (
    "caller", "give_consent", "request_email_code", "check_email_code", "submit",
)  # fmt: skip
AREAS = (
    "110101", "127101", "137101", "167101", "317101", "317401", "320101",
    "327301", "337401", "350701", "357801", "367101", "510101", "527101",
    "617101", "647101", "737101", "717101", "817101", "917101",
)  # fmt: skip
"""Area codes (Kemendagri province, regency, district) of NIKs and KK numbers."""
STORM_AREA = "640101"
"""The area of the duplicate storm's NIKs (none of the registered people's)."""
FIRST_NAMES = ("Budi", "Siti", "Agus", "Dewi", "Rudi", "Ayu", "Joko", "Rina")
LAST_NAMES = ("Santoso", "Lestari", "Wijaya", "Hidayat", "Saputra", "Rahayu")
EMAIL_DOMAINS = ("gmail.com",) * 17 + ("yahoo.com", "yahoo.co.id", "example.com")
"""Mostly the big free providers, as in 2020; 1 in 20 a domain the typo check
does not know (it then computes edit distances to every known domain)."""
OLDEST = date(1962, 1, 1)
YOUNGEST = date(2001, 12, 31)


# --- synthetic people -------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """One synthetic applicant in one conversation."""

    index: int
    channel: str
    address: str = field(repr=False)
    details: Details = field(repr=False)
    pseudonym: str = ""


def _nik(area: str, born: date, female: bool, serial: int) -> str:
    """A NIK: area code, birth date DDMMYY (women: day + 40), 4-digit serial."""
    day = born.day + (40 if female else 0)
    return f"{area}{day:02d}{born.month:02d}{born.year % 100:02d}{serial:04d}"


def make_people(count: int, start: int = 0) -> list[Person]:
    """`count` people with distinct, structurally valid NIKs and KK numbers (each
    checked with `validate_nik`/`validate_kk`); even ones write by SMS, odd ones
    by Telegram. Deterministic for a given `start`."""
    from bot.channels.base import SMS, TELEGRAM
    from bot.policy.validation import (
        nik_birth_date_matches,
        validate_kk,
        validate_nik,
    )

    rng = random.Random(SEED + start)  # noqa: S311 (synthetic data, not secrets)
    span = (YOUNGEST - OLDEST).days
    seen: set[str] = set()
    people = []
    for index in range(start, start + count):
        area = AREAS[index % len(AREAS)]
        serial = (index // len(AREAS)) % 9999 + 1
        while True:
            born = OLDEST + timedelta(days=rng.randrange(span))
            nik = _nik(area, born, rng.random() < 0.5, serial)
            if nik not in seen:
                break
        if not (validate_nik(nik).valid and nik_birth_date_matches(nik, born)):
            raise AssertionError("the NIK generator made an invalid NIK")
        seen.add(nik)
        kk = f"{AREAS[(index * 7) % len(AREAS)]}{index:010d}"
        if not validate_kk(kk).valid:
            raise AssertionError("the KK generator made an invalid KK number")
        sms = index % 2 == 0
        details = Details(
            full_name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            email=f"peserta{index}@{EMAIL_DOMAINS[index % len(EMAIL_DOMAINS)]}",
            nik=nik,
            kk_number=kk,
            birth_date=born,
        )
        people.append(
            Person(
                index=index,
                channel=SMS if sms else TELEGRAM,
                address=f"+{SMS_BASE + index}" if sms else str(TELEGRAM_BASE + index),
                details=details,
            )
        )
    return people


def storm_group(round_index: int, size: int) -> list[Person]:
    """`size` conversations (alternately SMS and Telegram) of one person: the same
    NIK (in an area no registered person has), KK, name, birth date and e-mail."""
    from bot.policy.validation import validate_nik

    base = STORM_OFFSET + round_index * size
    people = make_people(size, base)
    first = people[0].details
    nik = _nik(STORM_AREA, first.birth_date, False, round_index % 9999 + 1)
    if not validate_nik(nik).valid:
        raise AssertionError("the storm NIK is invalid")
    details = replace(first, nik=nik)
    return [replace(person, details=details) for person in people]


def open_conversations(
    sessions: Callable[[], Session], people: list[Person]
) -> list[Person]:
    """Create each person's gateway conversation as the gateway does for a first
    message (`conversation_id`); the people with their pseudonyms."""
    from bot.messages.inbox import conversation_id
    from bot.messages.models import Conversation

    with sessions() as session, session.begin():
        ids = [
            conversation_id(session, p.channel, p.address, PSEUDONYM_KEY)
            for p in people
        ]
        rows = dict(
            session.execute(
                select(Conversation.id, Conversation.pseudonym).where(
                    Conversation.id.in_(ids)
                )
            ).all()
        )
    return [replace(p, pseudonym=rows[i]) for p, i in zip(people, ids, strict=True)]


# --- the database -----------------------------------------------------------------


@contextmanager
def database(url: str | None, work: Path) -> Iterator[tuple[str, str]]:
    """A fresh database: its URL and its kind. No URL: a SQLite file in `work`; a
    PostgreSQL URL: a new database on that server, dropped afterwards."""
    if not url:
        yield f"sqlite:///{work}/registry.db", f"SQLite {sqlite3.sqlite_version}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise SystemExit("--database-url must be a PostgreSQL server URL")
    admin = create_engine(
        url, future=True, isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )  # fmt: skip
    name = f"bench_registration_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            fresh = parsed.set(database=name).render_as_string(hide_password=False)
            yield fresh, f"PostgreSQL {str(version).split()[0]}"
        finally:
            with admin.connect() as connection:
                connection.execute(
                    text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                )
    finally:
        admin.dispose()


def count(session: Session, statement: Any) -> int:
    """The integer a COUNT query gives."""
    return int(session.execute(statement).scalar_one())


def by_status(session: Session, column: Any, *where: Any) -> dict[str, int]:
    """Rows per value of `column` (e.g. a status), filtered by `where`."""
    rows = session.execute(select(column, func.count()).where(*where).group_by(column))
    return {str(value): int(n) for value, n in rows.all()}


# --- measuring --------------------------------------------------------------------


class Recorder:
    """Latencies per operation, outcomes and errors, from many threads."""

    def __init__(self) -> None:
        """Empty records."""
        self._lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {}
        self.outcomes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def time(self, operation: str, call: Callable[[], Any]) -> Any:
        """Run `call`, recording its duration under `operation`; errors are
        recorded by type (never their text: it may hold data) and raised."""
        started = time.perf_counter()
        try:
            return call()
        except Exception as exc:
            with self._lock:
                self.errors[f"{operation}: {type(exc).__name__}"] += 1
            raise
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self.latencies.setdefault(operation, []).append(elapsed)

    def add(self, operation: str, seconds: float) -> None:
        """Record a duration measured by the caller."""
        with self._lock:
            self.latencies.setdefault(operation, []).append(seconds)

    def outcome(self, name: str) -> None:
        """Count one outcome."""
        with self._lock:
            self.outcomes[name] += 1

    def summary(self, operation: str) -> dict[str, Any]:
        """Calls and p50/p95/p99/max of one operation, in ms."""
        values = self.latencies.get(operation, [])
        return {
            "calls": len(values),
            "p50_ms": ms(percentile(values, 50)),
            "p95_ms": ms(percentile(values, 95)),
            "p99_ms": ms(percentile(values, 99)),
            "max_ms": ms(max(values, default=0.0)),
        }


def _stat_cpu(path: Path) -> tuple[str, float]:
    """A process's command name and CPU seconds from its /proc stat file."""
    try:
        stat = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return "", 0.0
    name = stat[stat.find("(") + 1 : stat.rfind(")")]
    fields = stat.rsplit(")", 1)[1].split()
    return name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(database: str | None) -> dict[str, float]:
    """CPU seconds used so far by each PostgreSQL backend (on this host) connected
    to `database`, by pid (none for None: SQLite runs inside this process)."""
    if not database:
        return {}
    found: dict[str, float] = {}
    for path in Path("/proc").glob("[0-9]*/stat"):
        name, seconds = _stat_cpu(path)
        if not name.startswith("postgres"):
            continue
        try:
            title = (path.parent / "cmdline").read_bytes().decode("ascii", "replace")
        except OSError:
            continue
        if f" {database} " in title.replace("\0", " "):
            found[path.parent.name] = seconds
    return found


class ConnectionCounter:
    """Counts the database connections an engine's pool opens."""

    def __init__(self, engine: Engine) -> None:
        """Start counting `engine`'s new connections."""
        self._lock = threading.Lock()
        self.opened = 0
        event.listen(engine, "connect", self._count)

    def _count(self, *_: Any) -> None:
        with self._lock:
            self.opened += 1


@dataclass
class Window:
    """Wall time and CPU of one phase (of this process and, on PostgreSQL, of
    the server backends connected to the benchmark's database)."""

    server_database: str | None = None
    connections: ConnectionCounter | None = None
    started: float = 0.0
    process_cpu: float = 0.0
    server_cpu: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    process_cpu_used: float = 0.0
    server_cpu_used: float = 0.0
    opened_before: int = 0
    opened: int = 0

    def start(self) -> None:
        """Mark the beginning."""
        self.process_cpu = sum(os.times()[:2])
        self.server_cpu = server_cpu(self.server_database)
        self.opened_before = self.connections.opened if self.connections else 0
        self.started = time.perf_counter()

    def stop(self) -> None:
        """Mark the end."""
        self.seconds = time.perf_counter() - self.started
        self.process_cpu_used = sum(os.times()[:2]) - self.process_cpu
        if self.connections:
            self.opened = self.connections.opened - self.opened_before
        now = server_cpu(self.server_database)
        # Backends that ended meanwhile are missed (an undercount, never negative).
        self.server_cpu_used = sum(
            seconds - self.server_cpu.get(pid, 0.0) for pid, seconds in now.items()
        )

    def report(self, done: int) -> dict[str, Any]:
        """Seconds, rate of `done` operations and CPU shares (of one core)."""
        wall = self.seconds
        return {
            "seconds": round(wall, 3),
            "per_second": round(done / wall, 1) if wall > 0 else 0.0,
            "process_cpu_s": round(self.process_cpu_used, 2),
            "process_core_share": round(self.process_cpu_used / wall, 2) if wall else 0,
            "server_cpu_s": round(self.server_cpu_used, 2),
            "server_core_share": round(self.server_cpu_used / wall, 2) if wall else 0,
            "process_cpu_ms_per_operation": (
                ms(self.process_cpu_used / done) if done else 0.0
            ),
            "server_cpu_ms_per_operation": (
                ms(self.server_cpu_used / done) if done else 0.0
            ),
            "connections_opened": self.opened,
        }


def in_threads(
    count: int, work: Callable[[int], None], deadline: float, window: Window
) -> int:
    """Run `work(i)` for i in range(count) in threads released together, timing
    the whole in `window`; how many threads were still running at the deadline."""
    barrier = threading.Barrier(count + 1)
    failures: list[str] = []

    def run(index: int) -> None:
        try:
            barrier.wait(60)
            work(index)
        except Exception as exc:  # reported; the checks then fail
            failures.append(type(exc).__name__)

    threads = [
        threading.Thread(target=run, args=(i,), daemon=True, name=f"bench-{i}")
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    window.start()
    barrier.wait(60)
    for thread in threads:
        thread.join(max(0.1, deadline + JOIN_GRACE - time.monotonic()))
    window.stop()
    if failures:
        raise RuntimeError(f"worker threads failed: {Counter(failures)}")
    return sum(thread.is_alive() for thread in threads)


@dataclass(frozen=True)
class Context:
    """What every phase works with."""

    desk: RegistrationDesk
    sessions: Callable[[], Session]
    threads: int
    deadline: float
    connections: ConnectionCounter | None = None
    server_database: str | None = None

    def window(self) -> Window:
        """A new phase timer."""
        return Window(
            server_database=self.server_database, connections=self.connections
        )


# --- phase 1: registrations -------------------------------------------------------


def register_one(desk: RegistrationDesk, person: Person, rec: Recorder) -> None:
    """One registration as the chat does it; its outcome recorded."""
    details = person.details
    assert details.email is not None
    started = time.perf_counter()
    try:
        caller = rec.time("caller", lambda: desk.caller(person.pseudonym))
        if caller is None:
            rec.outcome("no_conversation")
            return
        rec.time("give_consent", lambda: desk.give_consent(caller))
        request = rec.time(
            "request_email_code",
            lambda: desk.request_email_code(caller, details.email or ""),
        )
        code = request.code
        if code is None:
            rec.outcome(f"code_refused_wait_{request.wait_minutes}")
            return
        check = rec.time(
            "check_email_code", lambda: desk.check_email_code(caller, code)
        )
        if not check.ok:
            rec.outcome(f"code_{check.status}")
            return
        submission = rec.time("submit", lambda: desk.submit(caller, details))
        rec.outcome(submission.outcome)
    except Exception:
        rec.outcome("error")
        return
    rec.add("registration", time.perf_counter() - started)


def phase_registrations(ctx: Context, people: list[Person]) -> dict[str, Any]:
    """N registrations from T threads; rates, latencies and the registry's rows."""
    from bot.registry.models import (
        JOB_NIK,
        STEP_NIK,
        Applicant,
        ChannelIdentity,
        RegistrationStep,
        VerificationJob,
    )

    rec = Recorder()
    window = ctx.window()

    def work(worker: int) -> None:
        for person in people[worker :: ctx.threads]:
            if time.monotonic() > ctx.deadline:
                rec.outcome("not_attempted_timeout")
                continue
            register_one(ctx.desk, person, rec)

    hung = in_threads(ctx.threads, work, ctx.deadline, window)
    with ctx.sessions() as session:
        rows = {
            "applicants": count(session, select(func.count(Applicant.id))),
            "distinct_niks": count(
                session, select(func.count(func.distinct(Applicant.nik)))
            ),
            "linked_identities": count(
                session,
                select(func.count(ChannelIdentity.id)).where(
                    ChannelIdentity.applicant_id.is_not(None)
                ),
            ),
            "nik_jobs": by_status(
                session, VerificationJob.status, VerificationJob.kind == JOB_NIK
            ),
            "nik_steps": by_status(
                session, RegistrationStep.status, RegistrationStep.step == STEP_NIK
            ),
        }
    n = len(people)
    queued = rec.outcomes.get("queued", 0)
    passed = (
        not hung
        and queued == n
        and not rec.errors
        and rows["applicants"] == rows["distinct_niks"] == n
        and rows["linked_identities"] == n
        and rows["nik_jobs"] == {"queued": n}
        and rows["nik_steps"] == {"pending": n}
    )
    return {
        **window.report(queued),
        "people": n,
        "outcomes": dict(rec.outcomes),
        "errors": dict(rec.errors),
        "threads_hung": hung,
        "latency": {
            op: rec.summary(op) for op in ("registration", *REGISTRATION_OPERATIONS)
        },
        "rows": rows,
        "passed": passed,
    }


# --- phase 2: duplicate storm -----------------------------------------------------


def prepare_storm_caller(desk: RegistrationDesk, person: Person) -> Caller:
    """A storm conversation up to the submit: consent given, e-mail proven."""
    caller = desk.caller(person.pseudonym)
    if caller is None:
        raise RuntimeError("storm conversation missing")
    desk.give_consent(caller)
    request = desk.request_email_code(caller, person.details.email or "")
    if request.code is None or not desk.check_email_code(caller, request.code).ok:
        raise RuntimeError("storm e-mail not proven")
    return caller


def phase_storm(ctx: Context, rounds: int) -> tuple[dict[str, Any], list[Person]]:
    """R rounds of T simultaneous submits of one NIK; the winners' conversations."""
    from bot.registry.models import Applicant

    desk, threads = ctx.desk, ctx.threads
    rec = Recorder()
    window = ctx.window()
    winners: list[Person] = []
    applicants_per_nik: Counter[int] = Counter()
    rounds_right = 0
    hung = 0
    seconds = 0.0
    for round_index in range(rounds):
        if time.monotonic() > ctx.deadline:
            break
        group = open_conversations(ctx.sessions, storm_group(round_index, threads))
        callers = [prepare_storm_caller(desk, person) for person in group]
        results: list[str] = [""] * threads

        def work(
            worker: int,
            group: list[Person] = group,
            callers: list[Caller] = callers,
            results: list[str] = results,
        ) -> None:
            caller = callers[worker]
            try:
                submission = rec.time(
                    "storm_submit", lambda: desk.submit(caller, group[worker].details)
                )
                results[worker] = submission.outcome
            except Exception:
                results[worker] = "error"
            rec.outcome(results[worker])

        hung += in_threads(threads, work, ctx.deadline, window)
        seconds += window.seconds
        winners += [p for p, r in zip(group, results, strict=True) if r == "queued"]
        with ctx.sessions() as session:
            found = count(
                session,
                select(func.count(Applicant.id)).where(
                    Applicant.nik == group[0].details.nik
                ),
            )
        applicants_per_nik[found] += 1
        outcomes = Counter(results)
        rounds_right += (
            found == 1
            and outcomes["queued"] == 1
            and outcomes["nik_taken"] == threads - 1
        )
    done = sum(applicants_per_nik.values())
    passed = done == rounds and rounds_right == rounds and not hung and not rec.errors
    return {
        "rounds": done,
        "threads": threads,
        "submits": sum(rec.outcomes.values()),
        "outcomes": dict(rec.outcomes),
        "errors": dict(rec.errors),
        "rounds_with_one_applicant_one_queued_rest_nik_taken": rounds_right,
        "rounds_by_applicants_for_the_nik": {
            str(k): v for k, v in sorted(applicants_per_nik.items())
        },
        "threads_hung": hung,
        "submit_seconds_total": round(seconds, 3),
        "latency": {"storm_submit": rec.summary("storm_submit")},
        "passed": passed,
    }, winners


# --- phase 3: NIK checks ----------------------------------------------------------


class InstantVerifier:
    """A NikVerifier that says "verified" at once (measures the queue only)."""

    def __init__(self) -> None:
        """No checks yet."""
        self.calls = 0

    async def verify(self, request: NikRequest) -> NikCheckResult:
        """Verified, whatever was asked."""
        self.calls += 1
        return result_for("verified")


async def drain(
    runner: Any, threads: int, deadline: float
) -> tuple[int, list[float], bool]:
    """`run_once` until nothing is due: jobs handled, each round's seconds, and
    whether the queue was emptied before the deadline."""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=threads + 2, thread_name_prefix="bench-db")
    )
    handled, rounds = 0, list[float]()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return handled, rounds, False
        started = time.perf_counter()
        done = await asyncio.wait_for(runner.run_once(), timeout=left + JOIN_GRACE)
        if not done:
            return handled, rounds, True
        rounds.append(time.perf_counter() - started)
        handled += done


def phase_checks(ctx: Context, expected: int) -> dict[str, Any]:
    """Drain the NIK jobs with the instant verifier; every job and step done."""
    from bot.messages.events import PROVIDER_PREFIX
    from bot.messages.models import InboxMessage
    from bot.registry.models import (
        JOB_NIK,
        STEP_NIK,
        RegistrationStep,
        VerificationJob,
    )
    from bot.verification.options import NikCheckOptions
    from bot.verification.queue import NikCheckRunner

    options = replace(NikCheckOptions(), concurrency=ctx.threads)
    verifier = InstantVerifier()
    runner = NikCheckRunner(ctx.sessions, verifier, LEASE_OWNER, options, grace=5.0)
    window = ctx.window()
    window.start()
    handled, rounds, emptied = asyncio.run(drain(runner, ctx.threads, ctx.deadline))
    window.stop()
    with ctx.sessions() as session:
        jobs = by_status(
            session, VerificationJob.status, VerificationJob.kind == JOB_NIK
        )
        results = by_status(
            session, VerificationJob.result_code, VerificationJob.kind == JOB_NIK
        )
        steps = by_status(
            session, RegistrationStep.status, RegistrationStep.step == STEP_NIK
        )
        events = count(
            session,
            select(func.count(InboxMessage.id)).where(
                InboxMessage.provider_id.like(f"{PROVIDER_PREFIX}nik:%")
            ),
        )
    passed = (
        emptied
        and handled == verifier.calls == expected
        and jobs == {"done": expected}
        and results == {"verified": expected}
        and steps == {"done": expected}
        and events == expected
    )
    return {
        **window.report(handled),
        "expected": expected,
        "handled": handled,
        "verifier_calls": verifier.calls,
        "claim_size": options.concurrency,
        "rounds": len(rounds),
        "round_p50_ms": ms(percentile(rounds, 50)),
        "round_p95_ms": ms(percentile(rounds, 95)),
        "jobs": jobs,
        "results": results,
        "nik_steps": steps,
        "nik_checked_events": events,
        "emptied_before_timeout": emptied,
        "passed": passed,
    }


# --- phase 4: batch joins ---------------------------------------------------------


def phase_joins(ctx: Context, joiners: list[Person], quota: int) -> dict[str, Any]:
    """Every verified applicant joins one batch of quota Q from T threads."""
    from bot.db import utcnow
    from bot.registry import batch_by_number, ensure_batch
    from bot.registry.models import BatchMembership

    desk = ctx.desk
    now = utcnow()
    with ctx.sessions() as session, session.begin():
        ensure_batch(
            session, BATCH_NUMBER, now - timedelta(hours=1), now + timedelta(days=1),
            quota,
        )  # fmt: skip
    rec = Recorder()
    window = ctx.window()

    def work(worker: int) -> None:
        for person in joiners[worker :: ctx.threads]:
            if time.monotonic() > ctx.deadline:
                rec.outcome("not_attempted_timeout")
                continue
            try:
                caller = rec.time("caller", partial(desk.caller, person.pseudonym))
                if caller is None:
                    rec.outcome("no_conversation")
                    continue
                result = rec.time("join", partial(desk.join, caller, BATCH_NUMBER))
                rec.outcome(result.outcome)
            except Exception:
                rec.outcome("error")

    hung = in_threads(ctx.threads, work, ctx.deadline, window)
    with ctx.sessions() as session:
        batch = batch_by_number(session, BATCH_NUMBER)
        members = count(
            session,
            select(func.count(BatchMembership.id)).where(
                BatchMembership.batch_id == (batch.id if batch else -1)
            ),
        )
    joined_count = batch.joined_count if batch else -1
    joined = rec.outcomes.get("joined", 0)
    full = rec.outcomes.get("full", 0)
    passed = (
        not hung
        and not rec.errors
        and joined == quota
        and full == len(joiners) - quota
        and joined_count == members == quota
    )
    return {
        **window.report(joined + full),
        "joiners": len(joiners),
        "quota": quota,
        "outcomes": dict(rec.outcomes),
        "errors": dict(rec.errors),
        "batch_joined_count": joined_count,
        "memberships": members,
        "threads_hung": hung,
        "latency": {op: rec.summary(op) for op in ("caller", "join")},
        "passed": passed,
    }


# --- one run ----------------------------------------------------------------------


class LogCounter(logging.Handler):
    """Counts warnings and errors by level and logger (their text is not kept)."""

    def __init__(self) -> None:
        """No records yet."""
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        """Count one record."""
        self.counts[f"{record.levelname} {record.name}"] += 1


def run_benchmark(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Migrate a fresh database, run the four phases, check the rows."""
    from sqlalchemy.engine import make_url

    from bot.db import make_engine, make_sessionmaker
    from bot.policy.programme import load_policy
    from bot.schema import upgrade

    deadline = time.monotonic() + args.timeout
    logs = LogCounter()
    logging.getLogger().addHandler(logs)
    people = make_people(args.people)
    with database(args.database_url, work) as (url, kind):
        where = machine(kind)
        upgrade(url)
        engine = make_engine(url)
        try:
            sessions = make_sessionmaker(engine)
            ctx = Context(
                desk=RegistrationDesk(sessions, CODE_SECRET, load_policy),
                sessions=sessions,
                threads=args.threads,
                deadline=deadline,
                connections=ConnectionCounter(engine),
                server_database=(
                    make_url(url).database if kind.startswith("PostgreSQL") else None
                ),
            )
            setup = time.perf_counter()
            people = open_conversations(sessions, people)
            setup_seconds = time.perf_counter() - setup
            registrations = phase_registrations(ctx, people)
            storm, winners = phase_storm(ctx, args.storm_rounds)
            expected = registrations["outcomes"].get("queued", 0) + len(winners)
            checks = phase_checks(ctx, expected)
            joins = phase_joins(ctx, people + winners, args.quota)
        finally:
            engine.dispose()
    logging.getLogger().removeHandler(logs)
    where["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    policy = load_policy()
    return {
        "parameters": {
            "people": args.people,
            "threads": args.threads,
            "quota": args.quota,
            "storm_rounds": args.storm_rounds,
            "timeout_s": args.timeout,
            "policy": policy.version,
            "kk_cap": policy.eligibility.kk_cap,
            "conversations_setup_s": round(setup_seconds, 3),
            "april_2020_average_per_second": round(AVERAGE_PER_SECOND, 1),
            "april_2020_peak_per_second": round(PEAK_PER_SECOND, 1),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "machine": where,
        "registrations": registrations,
        "storm": storm,
        "nik_checks": checks,
        "joins": joins,
        "log": dict(logs.counts),
        "passed": all(
            phase["passed"] for phase in (registrations, storm, checks, joins)
        ),
    }


# --- report -----------------------------------------------------------------------


def _yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def _lat(summary: dict[str, Any]) -> str:
    return f"{summary['p50_ms']:g} / {summary['p95_ms']:g}"


def markdown(result: dict[str, Any]) -> str:
    """The summary to paste into docs/benchmarks.md."""
    p, m = result["parameters"], result["machine"]
    reg, storm = result["registrations"], result["storm"]
    checks, joins = result["nik_checks"], result["joins"]
    server = m["database"].startswith("PostgreSQL")

    def cpu(phase: dict[str, Any]) -> str:
        share = f"{phase['process_core_share']:g}"
        if not server:
            return share
        # Backends that ended during the phase are not counted: a lower bound.
        floor = "≥ " if phase["connections_opened"] else ""
        return f"{share} / {floor}{phase['server_core_share']:g}"

    rows = [
        ("Registrations (5 desk calls each)", reg, reg["outcomes"].get("queued", 0),
         _lat(reg["latency"]["registration"])),
        (f"Duplicate storm submits ({storm['rounds']} × {storm['threads']})", None,
         storm["submits"], _lat(storm["latency"]["storm_submit"])),
        (f"NIK checks (run_once, {checks['claim_size']} per claim)", checks,
         checks["handled"], f"{checks['round_p50_ms']:g} / "
         f"{checks['round_p95_ms']:g} per round"),
        ("Batch joins (caller + join)", joins,
         joins["outcomes"].get("joined", 0) + joins["outcomes"].get("full", 0),
         _lat(joins["latency"]["join"])),
    ]  # fmt: skip
    cpu_head = "CPU: bench / server backends" if server else "CPU"
    lines = [
        f"### Registration registry: one process, {m['database']}",
        "",
        f"{p['people']} people (half SMS, half Telegram), {p['threads']} threads, "
        f"batch quota {p['quota']}, {p['storm_rounds']} storm rounds, policy "
        f"{p['policy']}; {m['nproc']} × {m['cpu_model']}, Python {m['python']}; "
        f"load average {m['load_average_at_start'][0]} at start, "
        f"{m['load_average_at_end'][0]} at end; {p['date']}.",
        "",
        f"| Phase | Done | Seconds | Per second | p50 / p95 (ms) | {cpu_head} "
        "| New DB connections |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, phase, done, latency in rows:
        if phase is None:
            lines.append(
                f"| {label} | {done} | {storm['submit_seconds_total']:g} | - | "
                f"{latency} | - | - |"
            )
        else:
            lines.append(
                f"| {label} | {done} | {phase['seconds']:g} | "
                f"{phase['per_second']:g} | {latency} | {cpu(phase)} | "
                f"{phase['connections_opened']} |"
            )
    lines += [
        "",
        "| Desk call | p50 (ms) | p95 (ms) | p99 (ms) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for op in REGISTRATION_OPERATIONS:
        s = reg["latency"][op]
        lines.append(f"| {op} | {s['p50_ms']:g} | {s['p95_ms']:g} | {s['p99_ms']:g} |")
    s = joins["latency"]["join"]
    lines.append(f"| join | {s['p50_ms']:g} | {s['p95_ms']:g} | {s['p99_ms']:g} |")
    rows_ = reg["rows"]
    n = reg["people"]
    storm_out = storm["outcomes"]
    join_out = joins["outcomes"]
    lines += [
        "",
        "| Check | Result |",
        "| --- | --- |",
        f"| Every registration queued, no error | "
        f"{_yes(reg['outcomes'].get('queued', 0) == n and not reg['errors'])} "
        f"({reg['outcomes'].get('queued', 0)}/{n}; errors "
        f"{sum(reg['errors'].values())}) |",
        f"| N applicants, N linked identities, N queued NIK jobs | "
        f"{_yes(reg['passed'])} ({rows_['applicants']} / {rows_['linked_identities']} "
        f"/ {rows_['nik_jobs'].get('queued', 0)}) |",
        f"| Duplicate storm: one applicant per NIK, the others `nik_taken` | "
        f"{_yes(storm['passed'])} "
        f"({storm['rounds_with_one_applicant_one_queued_rest_nik_taken']}/"
        f"{storm['rounds']} rounds; {storm_out.get('queued', 0)} queued, "
        f"{storm_out.get('nik_taken', 0)} nik_taken) |",
        f"| Every NIK job and step done, one `nik_checked` event each | "
        f"{_yes(checks['passed'])} ({checks['jobs'].get('done', 0)}/"
        f"{checks['expected']} jobs, {checks['nik_steps'].get('done', 0)} steps, "
        f"{checks['nik_checked_events']} events) |",
        f"| Quota race: exactly Q joined, the rest `full`, joined_count = Q | "
        f"{_yes(joins['passed'])} ({join_out.get('joined', 0)} joined, "
        f"{join_out.get('full', 0)} full of {joins['joiners']}; joined_count "
        f"{joins['batch_joined_count']}, memberships {joins['memberships']}) |",
        f"| Warnings or errors logged | {_yes(not result['log'])} "
        f"({sum(result['log'].values())}) |",
        "",
        f"Registrations: {reg['per_second']:g}/s against "
        f"{p['april_2020_average_per_second']:g}/s (April 2020 average) and "
        f"{p['april_2020_peak_per_second']:g}/s (peak minute); this process "
        f"spent {reg['process_cpu_ms_per_operation']:g} ms of CPU per "
        f"registration" + (
            f", the server backends {reg['server_cpu_ms_per_operation']:g} ms."
            if server else "."
        ),
        "",
        "CPU: share of one core over the phase, of this process"
        + (" / of the server backends of the benchmark's database (≥: backends "
           "that ended during the phase are missed)." if server
           else " (SQLite runs inside it)."),
        "New DB connections: opened by the engine's pool during the phase "
        "(`bot.db.make_engine` defaults).",
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    """Parse the arguments, run once, write the JSON, print the summary."""
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server URL (a fresh database is created on it and "
        "dropped); default: SQLite in a temporary folder",
    )
    parser.add_argument("--quota", type=int, help="batch quota (default: N/2)")
    parser.add_argument("--storm-rounds", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    if args.quota is None:
        args.quota = args.people // 2
    if not (1 <= args.quota < args.people and 2 <= args.threads <= 64):
        parser.error("need 1 <= --quota < --people and 2 <= --threads <= 64")
    if args.storm_rounds < 0:
        parser.error("--storm-rounds must be >= 0")
    work = Path(tempfile.mkdtemp(prefix="bench-registration-"))
    try:
        result = run_benchmark(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "registration.json").write_text(
        json.dumps(result, indent=2) + "\n", encoding="utf-8"
    )
    print(markdown(result))
    if result["log"]:
        print(f"\nLog: {result['log']}")
    if not result["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
