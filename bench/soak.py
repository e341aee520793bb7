"""Soak: the whole assistant under traffic while its processes are killed.

Usage: python -m bench.soak [--short] [--people P] [--messages N]
       [--concurrency C] [--kills K] [--no-kills] [--database-url URL]
       [--redis-url URL] [--timeout S] [--keep] [--plant KIND]

Starts, on free 127.0.0.1 ports: two gateway processes (`python -m bot`) on one
PostgreSQL database created fresh for the run (dropped afterwards), Rasa (`rasa
run`, the trained model, SQL tracker store in that database, RedisLockStore with
a key prefix of its own) and the action server, with the real python-telegram-bot
and twilio clients pointed at the local fakes of Telegram's and Twilio's APIs
(threads of this process); e-mail codes go to the local outbox folder, where the
people read them. P people (half SMS, half Telegram) send N messages in all, each
waiting for the answer before the next message (closed loop, at most C people at
once): FAQ questions, the eligibility form, full registrations (the test people of
bot/verification/population.py, then synthetic people the local population
knows: e-mail code, NIK, KK, birth date, joining a batch, status) and handoffs
(ask for an agent, then BATAL). Webhooks are signed (Twilio RequestValidator,
Telegram secret token) and go to either gateway, retried on the other when one is
down. Some people send two messages at the same instant, one to each gateway.

Meanwhile a gateway process, Rasa and the action server are each killed with
SIGKILL K times at random moments (`--short`: 500 messages, 50 people, K = 1),
and restarted at once. Afterwards, from the fakes, the mail folder and the
database, it counts (and fails, exit 1, unless each is 0): messages lost (no
reply at all), replies duplicated (one outbox row delivered twice at a fake),
side effects duplicated (e-mails per code request, e-mail codes per request,
applicants per NIK, batch memberships per applicant and against the batches'
counters, handoff tickets per request), and per-conversation order violations
(replies delivered in another order than stored, or a later message answered
before an earlier one). It prints the worst recovery time after each kind of kill
(from the kill to the first reply of each conversation that was waiting then) and
the throughput. Results go to results/soak/soak.json. Every wait is bounded;
traffic stays on 127.0.0.1.

`--plant duplicate|lost|order|email|ticket` plants one defect after the traffic
(a reply sent again to a fake provider, the replies to one person dropped, two
replies swapped, a code e-mail written twice, a second handoff ticket stored) to
show that the checks catch it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.gateway import (
    SMS,
    SMS_PATH,
    TELEGRAM,
    TELEGRAM_PATH,
    Message,
    _sms_params,
    _telegram_update,
    clean_env,
    database,
    free_port,
    log_summary,
    machine,
    percentile,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "soak"
MODEL = ROOT / "models" / "prakerja.tar.gz"
BIN = Path(sys.executable).parent
SEED = 2026
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
TELEGRAM_SECRET = "soak-telegram-secret-token"  # noqa: S105 (a local fake's)
TWILIO_TOKEN = "soak-twilio-auth-token"  # noqa: S105 (a local fake's)
TWILIO_SID = "AC" + "1" * 32
TWILIO_FROM = "+15550002222"
SMS_BASE = 62_813_0000_0000
TELEGRAM_BASE = 710_000_000
START_TIMEOUT = 300.0  # Rasa loads its model slowly on a busy machine
STOP_TIMEOUT = 20.0
POST_TIMEOUT = 10.0  # one webhook request
POST_DEADLINE = 90.0  # a webhook retried (on the other gateway) for this long
REPLY_TIMEOUT = 180.0  # a person waits this long for an answer (lease is 120 s)
MARKER_TIMEOUT = 45.0  # extra wait for an expected later message (NIK result)
SETTLE = 0.5  # quiet time after a reply before the person types again
SETTLE_MAX = 3.0
THINK = (0.1, 0.8)  # seconds a person takes to type the next message
DRAIN_TIMEOUT = 120.0  # after the traffic: wait for the outbox to empty
AFTER_DRAIN = 5.0  # then listen for late duplicates
KILL_GAP = 5.0  # at least this long between a restart being ready and a kill
POLL = 0.05
CODE = re.compile(r"\b(\d{6})\b")
KINDS = ("gateway", "rasa", "actions")
MIX = (("registration", 0.3), ("eligibility", 0.25), ("handoff", 0.1), ("faq", 0.35))
FAQ = (
    "kartu prakerja itu program apa sih",
    "syarat ikut prakerja apa aja",
    "dapet duit berapa kalo ikut prakerja",
    "gimana cara daftar prakerja",
    "insentifnya cair kapan ya",
    "pelatihannya online atau offline",
    "mahasiswa boleh ikut gak",
    "gelombang berikutnya kapan dibuka",
    "halo",
    "makasih ya",
)
ELIGIBILITY = (
    "cek dong aku bisa ikut prakerja gak",
    "umur saya 27 tahun",
    "iya saya wni",
    "tidak, sudah lulus",
    "bukan",
    "belum pernah",
    "tidak",
)
HANDOFF = ("sambungkan saya ke petugas", "BATAL")


# --- people and what they type ---------------------------------------------------


@dataclass
class Step:
    """One message a person sends (or two at once, when `pair` is set)."""

    text: str
    expect: str = ""  # wait for a reply containing this (case-insensitive)
    kind: str = ""  # "email", "code", "handoff": what the checks count
    pair: str = ""  # a second text posted at the same instant to the other gateway


@dataclass(frozen=True)
class Identity:
    """Who registers: name, e-mail and the identity numbers typed."""

    full_name: str
    email: str
    nik: str
    kk_number: str
    birth_date: date


@dataclass
class Person:
    """One person on one channel with the script they follow."""

    index: int
    channel: str
    address: str
    flow: str
    steps: list[Step]
    identity: Identity | None = None


@dataclass
class Sent:
    """One inbound message posted, and what happened to its webhook."""

    person: int
    seq: int
    channel: str
    address: str
    text: str
    provider_id: str
    kind: str
    posted_at: float = 0.0
    status: int = 0
    attempts: int = 0


def _faq(rng: random.Random, count: int) -> list[Step]:
    return [Step(rng.choice(FAQ)) for _ in range(count)]


def registration_steps(identity: Identity) -> list[Step]:
    """A full registration: consent, name, e-mail + code, NIK, KK, birth date,
    the NIK result (sent by the gateway), joining the open batch, status."""
    born = identity.birth_date.strftime("%d-%m-%Y")
    return [
        Step("daftar"),
        Step("setuju"),
        Step(identity.full_name),
        Step(identity.email, kind="email"),
        Step("", kind="code"),  # the code read from the mail folder at send time
        Step(identity.nik),
        Step(identity.kk_number),
        Step(born, expect="Cek NIK selesai"),
        Step("gabung"),
        Step("status"),
    ]


def identities(count: int) -> list[Identity]:
    """The test people of the population first, then synthetic ones."""
    from bench.registration import make_people
    from bot.verification.population import TEST_PEOPLE

    found = [
        Identity(p.full_name.title(), f"uji{i}@gmail.com", p.nik, p.kk_number,
                 p.birth_date)
        for i, p in enumerate(TEST_PEOPLE)
    ]  # fmt: skip
    extra = max(0, count - len(found))
    for person in make_people(extra, start=50_000) if extra else []:
        d = person.details
        found.append(
            Identity(d.full_name, f"soak{person.index}@gmail.com", d.nik,
                     d.kk_number, d.birth_date)
        )  # fmt: skip
    return found[:count]


def build_people(people: int, messages: int, rng: random.Random) -> list[Person]:
    """`people` people sending `messages` in all, in the mix of flows."""
    share = [messages // people + (1 if i < messages % people else 0)
             for i in range(people)]  # fmt: skip
    flows = [rng.choices([f for f, _ in MIX], [w for _, w in MIX])[0]
             for _ in range(people)]  # fmt: skip
    registering = iter(identities(flows.count("registration")))
    result = []
    for index, (flow, count) in enumerate(zip(flows, share, strict=True)):
        identity = next(registering) if flow == "registration" else None
        if identity is not None:
            steps = registration_steps(identity)
        elif flow == "eligibility":
            steps = [Step(text) for text in ELIGIBILITY]
        elif flow == "handoff":
            steps = [Step(HANDOFF[0], kind="handoff"), Step(HANDOFF[1])]
        else:
            steps = []
        if len(steps) < count:
            filler = _faq(rng, count - len(steps))
            if flow == "faq" and count - len(steps) >= 2:
                filler[0].pair = rng.choice(FAQ)
                filler.pop()  # the pair is two messages
            steps = filler[:1] + steps + filler[1:] if flow != "faq" else filler
        steps = steps[:count] if identity is None else steps
        sms = index % 2 == 0
        result.append(
            Person(
                index=index,
                channel=SMS if sms else TELEGRAM,
                address=f"+{SMS_BASE + index}" if sms else str(TELEGRAM_BASE + index),
                flow=flow,
                steps=steps,
                identity=identity,
            )
        )
    return result


def seed(env: dict[str, str], db_url: str, people: list[Person]) -> None:
    """`python -m bot.seed`, then the synthetic people into the population."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.seed"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"bot.seed failed:\n{done.stdout}\n{done.stderr}")
    from bot.db import make_engine, make_sessionmaker
    from bot.verification.population import POPULATION, seed_population
    from bot.verification.population import Person as Resident

    known = {p.nik for p in POPULATION}
    residents = [
        Resident(p.identity.nik, p.identity.kk_number, p.identity.full_name.upper(),
                 p.identity.birth_date)
        for p in people
        if p.identity is not None and p.identity.nik not in known
        and p.identity.nik not in {t.nik for t in _test_people()}
    ]  # fmt: skip
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            seed_population(session, residents)
            session.commit()
    finally:
        engine.dispose()


def _test_people() -> tuple[Any, ...]:
    from bot.verification.population import TEST_PEOPLE

    return TEST_PEOPLE


# --- the fakes of the providers ----------------------------------------------------


@dataclass
class Delivery:
    """A reply a fake provider accepted."""

    at: float
    channel: str
    address: str
    text: str


class Deliveries:
    """Every reply the fakes accepted, in order, per address (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.all: list[Delivery] = []
        self._by_address: dict[str, list[Delivery]] = defaultdict(list)

    def add(self, channel: str, address: str, text: str) -> None:
        """Record one accepted reply."""
        delivery = Delivery(time.monotonic(), channel, address, text)
        with self._lock:
            self.all.append(delivery)
            self._by_address[address].append(delivery)

    def to(self, address: str) -> list[Delivery]:
        """The replies to one address so far."""
        with self._lock:
            return list(self._by_address.get(address, ()))

    def count(self, address: str) -> int:
        """How many replies one address got so far."""
        with self._lock:
            return len(self._by_address.get(address, ()))


def make_fakes(deliveries: Deliveries) -> tuple[Any, Any]:
    """The fake Twilio and Telegram APIs, recording into `deliveries`."""
    from tests.fakes.telegram_api import FakeTelegramApi
    from tests.fakes.twilio_api import Call, FakeTwilioApi

    class SoakTwilioApi(FakeTwilioApi):
        def _record(self, call: Call) -> None:
            if call.status == 201:
                deliveries.add(SMS, call.params["To"], call.params["Body"])
            else:
                super()._record(call)  # keep only the refused calls in memory

    class SoakTelegramApi(FakeTelegramApi):
        def _record(self, method: str, params: dict[str, Any], status: int) -> None:
            if method == "sendMessage" and status == 200:
                deliveries.add(
                    TELEGRAM, str(params.get("chat_id")), str(params.get("text", ""))
                )
            elif status != 200:
                super()._record(method, params, status)

    return (
        SoakTwilioApi(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN),
        SoakTelegramApi(),
    )


# --- the processes ------------------------------------------------------------------


@dataclass
class Service:
    """One process of the stack: started, killed with SIGKILL and restarted on the
    same port, in its own process group (so a kill takes its children too)."""

    name: str
    command: list[str]
    env: dict[str, str]
    ready_url: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        """Start the process (does not wait for it to be ready)."""
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n--- start {self.starts} ---\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    async def ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the ready URL answers (any HTTP status below 500)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited:\n{_tail(self.log)}")
                try:
                    if (await client.get(self.ready_url)).status_code < 500:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready in {timeout:g}s:\n{_tail(self.log)}")

    def kill(self) -> None:
        """SIGKILL the process and its group, and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()


def _tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def endpoints_yml(db_url: str, actions_port: int, redis_url: str, prefix: str) -> str:
    """Rasa's endpoints for the run: actions, PostgreSQL tracker, Redis locks."""
    from sqlalchemy.engine import make_url

    db, redis = make_url(db_url), httpx.URL(redis_url)
    redis_db = redis.path.strip("/") or "0"
    lines = [
        "action_endpoint:",
        f'  url: "http://127.0.0.1:{actions_port}/webhook"',
        "tracker_store:",
        "  type: SQL",
        "  dialect: postgresql",
        f'  url: "{db.host or "127.0.0.1"}"',
        f"  port: {db.port or 5432}",
        f'  db: "{db.database}"',
        f'  username: "{db.username or "postgres"}"',
    ]
    if db.password:
        lines.append(f'  password: "{db.password}"')
    lines += [
        "lock_store:",
        "  type: redis",
        f'  url: "{redis.host}"',
        f"  port: {redis.port or 6379}",
        f"  db: {redis_db}",
        f'  key_prefix: "{prefix}"',
    ]
    return "\n".join(lines) + "\n"


def make_services(
    work: Path, db_url: str, redis_url: str, twilio: Any, telegram: Any
) -> dict[str, Service]:
    """The two gateways, Rasa and the action server, not started yet."""
    actions_port, rasa_port = free_port(), free_port()
    gateway_ports = [free_port(), free_port()]
    public = f"http://127.0.0.1:{gateway_ports[0]}"  # both sign against one URL
    prefix = f"soak{uuid.uuid4().hex[:8]}"
    endpoints = work / "endpoints.yml"
    endpoints.write_text(endpoints_yml(db_url, actions_port, redis_url, prefix))
    shared = {
        **clean_env(),
        "PRAKERJA_ENV": "test",
        "PRAKERJA_POLICY": "2020",
        "PRAKERJA_VAR_DIR": str(work / "var"),
        "DATABASE_URL": db_url,
        "TRACKER_STORE_URL": db_url,
        "REDIS_URL": redis_url,
        "EMAIL_OUTBOX_DIR": str(work / "email-outbox"),
        "PSEUDONYM_KEY": "soak-pseudonym-key-for-this-run",
        "SMTP_URL": "",
        "NIK_VERIFIER_URL": "",
        "AGENT_HOURS": "00:00-24:00",
        "AGENT_DAYS": "1-7",
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    services = {
        "actions": Service(
            "actions",
            [str(BIN / "rasa"), "run", "actions", "--port", str(actions_port),
             "--actions", "actions"],
            shared, f"http://127.0.0.1:{actions_port}/health", work / "actions.log",
        ),
        "rasa": Service(
            "rasa",
            [str(BIN / "rasa"), "run", "--enable-api", "--port", str(rasa_port),
             "--model", str(MODEL), "--endpoints", str(endpoints)],
            shared, f"http://127.0.0.1:{rasa_port}/status", work / "rasa.log",
        ),
    }  # fmt: skip
    for number, port in enumerate(gateway_ports, start=1):
        env = {
            **shared,
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "PUBLIC_BASE_URL": public,
            "RASA_URL": f"http://127.0.0.1:{rasa_port}",
            "ACTIONS_URL": f"http://127.0.0.1:{actions_port}",
            "TWILIO_ACCOUNT_SID": TWILIO_SID,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_FROM_NUMBER": TWILIO_FROM,
            "TWILIO_API_URL": twilio.url,
            "TELEGRAM_TOKEN": telegram.token,
            "TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
            "TELEGRAM_API_URL": telegram.url,
        }
        services[f"gateway{number}"] = Service(
            f"gateway{number}", [sys.executable, "-m", "bot"], env,
            f"http://127.0.0.1:{port}/healthz", work / f"gateway{number}.log",
        )  # fmt: skip
    return services


def gateway_urls(services: dict[str, Service]) -> list[str]:
    """Base URLs of the gateways."""
    return [s.env["PUBLIC_BASE_URL"].rsplit(":", 1)[0] + ":" + s.env["GATEWAY_PORT"]
            for name, s in services.items() if name.startswith("gateway")]  # fmt: skip


# --- the traffic ------------------------------------------------------------------


@dataclass
class Kill:
    """One SIGKILL: what, when, who was waiting for an answer then."""

    kind: str
    target: str
    at: float
    waiting: dict[str, float]  # address -> when that person posted
    ready_after_s: float = 0.0


@dataclass
class Traffic:
    """What the people did, and the faults injected meanwhile."""

    sent: list[Sent] = field(default_factory=list)
    waiting: dict[str, float] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    email_requests: Counter[str] = field(default_factory=Counter)
    handoff_requests: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    missing_codes: int = 0
    started: float = 0.0
    ended: float = 0.0


class Driver:
    """People typing, closed loop, through the two gateways."""

    def __init__(
        self,
        urls: list[str],
        deliveries: Deliveries,
        mail: Path,
        rng: random.Random,
        deadline: float,
    ) -> None:
        from twilio.request_validator import RequestValidator

        self.urls = urls
        self.public = urls[0]
        self.deliveries = deliveries
        self.mail = mail
        self.rng = rng
        self.deadline = deadline
        self.traffic = Traffic()
        self.validator = RequestValidator(TWILIO_TOKEN)
        self._ids = 0
        self.client = httpx.AsyncClient(timeout=POST_TIMEOUT, trust_env=False)

    def _request(self, sent: Sent) -> tuple[str, bytes, dict[str, str]]:
        self._ids += 1
        message = Message(
            index=self._ids, user=sent.person, seq=sent.seq, channel=sent.channel,
            address=sent.address, text=sent.text, provider_id=sent.provider_id,
        )  # fmt: skip
        if sent.channel == SMS:
            params = _sms_params(message)
            params["AccountSid"] = TWILIO_SID
            params["To"] = TWILIO_FROM
            signature = self.validator.compute_signature(self.public + SMS_PATH, params)
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            }
            return SMS_PATH, urlencode(params).encode("ascii"), headers
        body = json.dumps(_telegram_update(message)).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
        }
        return TELEGRAM_PATH, body, headers

    async def post(self, sent: Sent, first: int) -> None:
        """POST as the provider does: retried (on the other gateway) while the
        answer is a transport error or 5xx, for at most POST_DEADLINE seconds."""
        path, body, headers = self._request(sent)
        sent.posted_at = time.monotonic()
        stop = sent.posted_at + POST_DEADLINE
        target = first
        while True:
            sent.attempts += 1
            try:
                response = await self.client.post(
                    self.urls[target] + path, content=body, headers=headers
                )
                sent.status = response.status_code
            except httpx.HTTPError:
                sent.status = 0
            if 200 <= sent.status < 500 or time.monotonic() > stop:
                return
            target = (target + 1) % len(self.urls)
            await asyncio.sleep(min(0.2 * sent.attempts, 2.0))

    def _new(self, person: Person, seq: int, text: str, kind: str) -> Sent:
        sms = person.channel == SMS
        provider_id = f"SM{uuid.uuid4().hex}" if sms else str(80_000_000 + len(
            self.traffic.sent))  # fmt: skip
        sent = Sent(person.index, seq, person.channel, person.address, text,
                    provider_id, kind)  # fmt: skip
        self.traffic.sent.append(sent)
        return sent

    async def _code(self, email: str) -> str:
        """The newest 6-digit code e-mailed to `email` (waits a little)."""
        from bot.notify.mailbox import outbox_files, read_message, text_body

        stop = time.monotonic() + 20.0
        while time.monotonic() < stop:
            for path in reversed(outbox_files(self.mail)):
                message = read_message(path)
                if message["To"] == email:
                    found = CODE.search(text_body(message))
                    if found:
                        return found.group(1)
            await asyncio.sleep(0.3)
        self.traffic.missing_codes += 1
        return "000000"

    async def _wait(self, address: str, before: int, replies: int, expect: str) -> None:
        """Until `replies` new replies arrived (and one containing `expect`), then
        a moment of quiet; bounded."""
        start = time.monotonic()
        while time.monotonic() - start < REPLY_TIMEOUT:
            if self.deliveries.count(address) >= before + replies:
                break
            await asyncio.sleep(POLL)
        else:
            self.traffic.timeouts += 1
            return
        if expect:
            stop = time.monotonic() + MARKER_TIMEOUT
            while time.monotonic() < stop and not any(
                expect.lower() in d.text.lower()
                for d in self.deliveries.to(address)[before:]
            ):
                await asyncio.sleep(POLL * 4)
        quiet_until = time.monotonic() + SETTLE
        stop = time.monotonic() + SETTLE_MAX
        seen = self.deliveries.count(address)
        while time.monotonic() < min(quiet_until, stop):
            await asyncio.sleep(POLL * 2)
            if self.deliveries.count(address) != seen:
                seen = self.deliveries.count(address)
                quiet_until = time.monotonic() + SETTLE

    async def person(self, person: Person) -> None:
        """One person's script, each message after the answer to the last."""
        for seq, step in enumerate(person.steps):
            if time.monotonic() > self.deadline:
                return
            text = step.text
            if step.kind == "code":
                assert person.identity is not None
                text = await self._code(person.identity.email)
            elif step.kind == "email":
                self.traffic.email_requests[text] += 1
            elif step.kind == "handoff":
                self.traffic.handoff_requests[person.address] += 1
            before = self.deliveries.count(person.address)
            first = self.rng.randrange(len(self.urls))
            sent = [self._new(person, seq, text, step.kind)]
            if step.pair:
                sent.append(self._new(person, seq, step.pair, "pair"))
            self.traffic.waiting[person.address] = time.monotonic()
            await asyncio.gather(
                *(
                    self.post(s, (first + i) % len(self.urls))
                    for i, s in enumerate(sent)
                )
            )
            await self._wait(person.address, before, len(sent), step.expect)
            self.traffic.waiting.pop(person.address, None)
            await asyncio.sleep(self.rng.uniform(*THINK))

    async def run(self, people: list[Person], concurrency: int) -> Traffic:
        """Everyone's script, at most `concurrency` people at once."""
        gate = asyncio.Semaphore(concurrency)

        async def one(person: Person) -> None:
            async with gate:
                await self.person(person)

        self.traffic.started = time.monotonic()
        try:
            await asyncio.gather(*(one(p) for p in people))
        finally:
            self.traffic.ended = time.monotonic()
            await self.client.aclose()
        return self.traffic


async def inject_faults(
    services: dict[str, Service],
    driver: Driver,
    total: int,
    per_kind: int,
    rng: random.Random,
    done: asyncio.Event,
) -> None:
    """SIGKILL each kind `per_kind` times at random points of the traffic (by
    messages sent, plus a random fraction of a second), restarting each at once;
    one at a time, each after the last restart is ready."""
    plan = [kind for kind in KINDS for _ in range(per_kind)]
    rng.shuffle(plan)
    slots = len(plan)
    points = [
        int(total * (0.1 + 0.75 * (i + rng.random() * 0.8) / max(slots, 1)))
        for i in range(slots)
    ]
    traffic = driver.traffic
    for kind, point in zip(plan, points, strict=True):
        while len(traffic.sent) < point and not done.is_set():
            await asyncio.sleep(0.1)
        if done.is_set():
            return
        await asyncio.sleep(rng.random())
        name = rng.choice(["gateway1", "gateway2"]) if kind == "gateway" else kind
        service = services[name]
        at = time.monotonic()
        service.kill()
        kill = Kill(kind, name, at, dict(traffic.waiting))
        traffic.kills.append(kill)
        print(f"  killed {name} at {at - traffic.started:.1f}s "
              f"({len(kill.waiting)} people waiting)", flush=True)  # fmt: skip
        service.start()
        await service.ready()
        kill.ready_after_s = round(time.monotonic() - at, 2)
        await asyncio.sleep(KILL_GAP)


# --- the checks -------------------------------------------------------------------


def database_rows(db_url: str) -> dict[str, Any]:
    """What the gateway and the actions stored: conversations, inbox, outbox, and
    the side effects."""
    from sqlalchemy import func, select

    from bot.db import make_engine
    from bot.gateway.models import Conversation, InboxMessage, OutboxMessage
    from bot.handoff.models import Ticket
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
                       InboxMessage.conversation_id, InboxMessage.status)
            ).all()  # fmt: skip
            outbox = c.execute(
                select(OutboxMessage.id, OutboxMessage.conversation_id,
                       OutboxMessage.inbox_id, OutboxMessage.body,
                       OutboxMessage.status).order_by(OutboxMessage.id)
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
    finally:
        engine.dispose()
    return {
        "conversations": conversations,
        "inbox": inbox,
        "outbox": outbox,
        "applicants": {nik: int(n) for nik, n in applicants},
        "memberships": {a: int(n) for a, n in memberships},
        "joined_count": int(joined),
        "email_codes": {email: int(n) for email, n in codes},
        "tickets": {conversation: int(n) for conversation, n in tickets},
    }


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
        for address in kill.waiting:
            after = [at for at in first_reply.get(address, []) if at >= kill.at]
            if after:
                times.append(after[0] - kill.at)
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
        })  # fmt: skip
    window = traffic.ended - traffic.started
    checks = {
        "messages_lost": len(lost),
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
            "replies_delivered": len(deliveries),
            "replies_unmatched": unmatched,
            "outbox_rows": len(rows["outbox"]),
            "outbox_by_status": dict(Counter(r.status for r in rows["outbox"])),
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
        },
        "recovery": dict(recovery),
        "throughput": {
            "window_s": round(window, 1),
            "messages_per_s": round(len(sent) / window, 2) if window > 0 else 0.0,
            "replies_per_s": round(len(deliveries) / window, 2) if window else 0.0,
            "post_to_first_reply_p50_ms": None,
        },
    }


def latencies(traffic: Traffic, deliveries: Deliveries) -> dict[str, float]:
    """Post to first reply (after it), per message, p50/p95 in ms."""
    values = []
    for s in traffic.sent:
        after = [d.at for d in deliveries.to(s.address) if d.at >= s.posted_at]
        if after and s.status == 200:
            values.append(after[0] - s.posted_at)
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p95_ms": round(percentile(values, 95) * 1000, 1),
    }


async def drain(db_url: str, timeout: float) -> None:
    """Wait until no inbox or outbox row is pending (bounded), then a while more
    for late duplicates."""
    from sqlalchemy import func, select

    from bot.db import make_engine
    from bot.gateway.models import (
        INBOX_PENDING,
        OUTBOX_PENDING,
        InboxMessage,
        OutboxMessage,
    )

    engine = make_engine(db_url)

    def pending() -> int:
        with engine.connect() as c:
            inbox = c.execute(select(func.count()).where(
                InboxMessage.status == INBOX_PENDING)).scalar_one()  # fmt: skip
            outbox = c.execute(select(func.count()).where(
                OutboxMessage.status == OUTBOX_PENDING)).scalar_one()  # fmt: skip
        return int(inbox) + int(outbox)

    stop = time.monotonic() + timeout
    try:
        while time.monotonic() < stop and await asyncio.to_thread(pending) > 0:
            await asyncio.sleep(1.0)
    finally:
        engine.dispose()
    await asyncio.sleep(AFTER_DRAIN)


# --- one run -------------------------------------------------------------------


async def soak(
    args: argparse.Namespace, work: Path, db_url: str, deliveries: Deliveries,
    twilio: Any, telegram: Any, people: list[Person],
) -> tuple[Traffic, dict[str, float]]:  # fmt: skip
    """Start the stack, drive the traffic with the faults, drain, stop."""
    services = make_services(work, db_url, args.redis_url, twilio, telegram)
    rng = random.Random(SEED + 1)  # noqa: S311 (a schedule, not a secret)
    try:
        print("starting the action server, Rasa and two gateways...", flush=True)
        for name in ("actions", "rasa", "gateway1", "gateway2"):
            services[name].start()
        await asyncio.gather(*(s.ready() for s in services.values()))
        deadline = time.monotonic() + args.timeout
        driver = Driver(gateway_urls(services), deliveries, work / "email-outbox",
                        random.Random(SEED + 2), deadline)  # noqa: S311  # fmt: skip
        done = asyncio.Event()
        total = sum(len(p.steps) + sum(1 for s in p.steps if s.pair) for p in people)
        print(f"traffic: {total} messages from {len(people)} people", flush=True)
        faults = asyncio.create_task(
            inject_faults(services, driver, total, args.kills, rng, done)
        )
        traffic = await driver.run(people, args.concurrency)
        done.set()
        await faults
        await drain(db_url, min(DRAIN_TIMEOUT, max(10.0, deadline - time.monotonic())))
        return traffic, latencies(traffic, deliveries)
    finally:
        for service in services.values():
            service.stop()


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Fakes, database, seed, the soak itself, then the analysis."""
    rng = random.Random(SEED)  # noqa: S311 (synthetic traffic)
    people = build_people(args.people, args.messages, rng)
    deliveries = Deliveries()
    twilio, telegram = make_fakes(deliveries)
    (work / "email-outbox").mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        for fake in (twilio, telegram):
            fake.start()
            stack.callback(fake.stop)
        db_url, db_kind = stack.enter_context(database(args.database_url, work))
        env = {
            **clean_env(),
            "PRAKERJA_ENV": "test",
            "DATABASE_URL": db_url,
            "PRAKERJA_VAR_DIR": str(work / "var"),
            "PRAKERJA_POLICY": "2020",
        }
        seed(env, db_url, people)
        where = machine(db_kind)
        traffic, latency = asyncio.run(
            soak(args, work, db_url, deliveries, twilio, telegram, people)
        )
        before_plants = len(deliveries.all)
        planted = [
            plant_live(kind, deliveries, twilio, telegram, work / "email-outbox",
                       db_url, rng)
            for kind in args.plant or ()
        ]  # fmt: skip
        rows = database_rows(db_url)
    observed = list(deliveries.all)
    if args.keep:
        write_transcripts(work / "transcripts.txt", people, traffic, observed)
    touched = {d.address for d in observed[before_plants:]}
    for kind in args.plant or ():
        planted.append(plant_observed(observed, kind, rng, touched))
    result = analyse(traffic, observed, rows, mail_counts(work / "email-outbox"))
    result["throughput"]["post_to_first_reply_p50_ms"] = latency["p50_ms"]
    result["throughput"]["post_to_first_reply_p95_ms"] = latency["p95_ms"]
    result["planted"] = [what for what in planted if what]
    result["logs"] = {
        name: log_summary(work / f"{name}.log")
        for name in ("gateway1", "gateway2", "rasa", "actions")
    }
    where["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = where
    result["parameters"] = {
        "messages": args.messages, "people": args.people,
        "concurrency": args.concurrency, "kills_per_kind": args.kills,
        "flows": dict(Counter(p.flow for p in people)),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }  # fmt: skip
    return result


def write_transcripts(
    path: Path, people: list[Person], traffic: Traffic, observed: list[Delivery]
) -> None:
    """Both directions of every conversation in time order (for --keep)."""
    events: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for s in traffic.sent:
        events[s.address].append((s.posted_at, f"  >> {s.text} [{s.status}]"))
    for d in observed:
        events[d.address].append((d.at, "  << " + d.text.replace("\n", "\n     ")))
    with path.open("w", encoding="utf-8") as out:
        for person in people:
            out.write(f"person {person.index} ({person.channel}, {person.flow})\n")
            start = traffic.started
            for at, line in sorted(events[person.address]):
                out.write(f"{at - start:8.2f} {line}\n")


def report(result: dict[str, Any]) -> str:
    """The summary printed at the end (and pasted into docs/benchmarks.md)."""
    p, m, c = result["parameters"], result["machine"], result["checks"]
    d, t = result["details"], result["throughput"]
    lines = [
        f"Soak: {d['messages_sent']} messages from {p['people']} people "
        f"({p['flows']}), {p['concurrency']} at once, {p['kills_per_kind']} kill(s) "
        f"of each kind; {m['database']}; {m['nproc']} x {m['cpu_model']}; load "
        f"{m['load_average_at_start'][0]} -> {m['load_average_at_end'][0]}; "
        f"{p['date']}",
    ]
    for what in result["planted"]:
        lines.append(f"PLANTED DEFECT: {what}")
    lines += ["", "| Check | Count |", "| --- | ---: |"]
    lines += [f"| {name.replace('_', ' ')} | {'' if n == 0 else '**'}{n}"
              f"{'' if n == 0 else '**'} |" for name, n in c.items()]  # fmt: skip
    lines += ["", "| Kill | Target | At (s) | Waiting | Restarted (s) | "
              "First reply (s) | Worst (s) | Never answered |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    worst: dict[str, float] = {}
    for kind, kills in result["recovery"].items():
        for k in kills:
            lines.append(
                f"| {kind} | {k['target']} | {k['at_s']} | {k['waiting']} | "
                f"{k['restart_ready_s']} | {k['first_s']} | {k['worst_s']} | "
                f"{k['never_answered']} |"
            )
            if k["worst_s"] is not None:
                worst[kind] = max(worst.get(kind, 0.0), k["worst_s"])
    lines += [
        "",
        "Worst recovery: " + (", ".join(f"{k} {v:g} s" for k, v in worst.items())
                              or "no kill"),
        f"Throughput: {t['messages_per_s']:g} messages/s, {t['replies_per_s']:g} "
        f"replies/s over {t['window_s']:g} s; post to first reply p50 "
        f"{t['post_to_first_reply_p50_ms']:g} ms, p95 "
        f"{t['post_to_first_reply_p95_ms']:g} ms",
        "Details: " + json.dumps(d),
        "PASSED" if result["passed"] else "FAILED",
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    """Parse the arguments, run once, write the JSON, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--short",
        action="store_true",
        help="500 messages, 50 people, one kill of each kind",
    )
    parser.add_argument("--people", type=int)
    parser.add_argument("--messages", type=int)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--kills", type=int, help="kills of each kind (default 3)")
    parser.add_argument("--no-kills", action="store_true", help="a calibration run")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE,
        help="PostgreSQL server: a fresh database is made and dropped",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--keep", action="store_true", help="keep logs and files")
    parser.add_argument(
        "--plant", choices=PLANTS, action="append", help="plant a defect (repeatable)"
    )
    args = parser.parse_args()  # fmt: skip
    args.people = args.people or (50 if args.short else 1000)
    args.messages = args.messages or (500 if args.short else 10_000)
    args.kills = 0 if args.no_kills else (args.kills or (1 if args.short else 3))
    if not (0 < args.people <= args.messages and args.concurrency > 0):
        parser.error("need 0 < --people <= --messages and --concurrency > 0")
    if not MODEL.exists():
        raise SystemExit(f"{MODEL} is missing: run `make train` first")
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        result = run(args, work)
    finally:
        if args.keep:
            print(f"Logs and files kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(report(result))
    if not result["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
