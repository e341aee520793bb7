"""Gateway throughput: one `python -m bot` process under a burst of SMS and Telegram.

Usage: python -m bench.gateway [--messages N] [--users U] [--concurrency C]
       [--closed-loop] [--telegram-per-second R] [--telegram-chat-per-second R]
       [--floor] [--no-status-callbacks]
       [--database-url URL] [--redis-url URL] [--rasa-delay-ms D] [--timeout S] [--keep]

Starts, on free 127.0.0.1 ports, the gateway as its own process (PRAKERJA_ENV=test;
a SQLite file in a temporary folder, or a fresh database created on the PostgreSQL
server of --database-url and dropped afterwards), a fake Rasa REST webhook as
another process (one short echo reply per message, after --rasa-delay-ms), and
fakes of Twilio's and Telegram's APIs in threads of this process. N messages from
U users, half SMS (signed with twilio's RequestValidator) and half Telegram (Update
JSON with the secret token header), are posted with at most C requests in flight,
each user's messages one after the other, as people type; then 10% of them are
posted a second time, as a provider retrying. With --closed-loop each of the U
users waits for the answer to a message before sending the next (U conversations
in flight), as people do; that is the mode for post-to-reply latency. Measured:
acknowledgements (ingest), replies reaching the fakes (end to end), correctness
(one reply per message, in order per user, none for a redelivery), and how busy
each process was. Results go
to results/bench/gateway.json and a Markdown summary to stdout. Traffic goes to
127.0.0.1 only; every loop is bounded by --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx

from bench.http_client import client_session, post_status
from bench.proc_cpu import BackendCpu, process_cpu, thread_cpu

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "bench"
SEED = 2020
DESCRIPTION = "Gateway throughput under a burst of SMS and Telegram messages."
SMS, TELEGRAM = "sms", "telegram"
SMS_PATH = "/sms/inbound"
TELEGRAM_PATH = "/telegram/webhook"
TELEGRAM_SECRET = "bench-telegram-secret-token"  # noqa: S105 (a local fake's)
TWILIO_TOKEN = "bench-twilio-auth-token"  # noqa: S105 (a local fake's)
TWILIO_SID = "AC" + "0" * 32
TWILIO_FROM = "+15550001111"
TELEGRAM_CHAT_BASE = 700_000_000
UPDATE_ID_BASE = 50_000_000
REDELIVER_SHARE = 0.10
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0
POST_ATTEMPTS = 3
SETTLE_SECONDS = 3.0
TAG = re.compile(r"\bu(\d+) m(\d+)\b")
ENV_PREFIXES = (
    "PRAKERJA_", "DATABASE_URL", "PUBLIC_BASE_URL", "RASA_URL", "ACTIONS_URL",
    "PSEUDONYM_KEY",
    "TELEGRAM_", "TWILIO_", "GATEWAY_",
)  # fmt: skip


# --- small helpers ----------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    """Seconds as milliseconds, rounded for the report."""
    return round(seconds * 1000, 1)


_GIVEN_PORTS: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now: within
    `BENCH_PORTS` ("18100-18199") when set, else any the system gives."""
    low, _, high = os.environ.get("BENCH_PORTS", "").partition("-")
    candidates = range(int(low), int(high or low) + 1) if low else range(0, 1)
    for port in candidates:
        if port and port in _GIVEN_PORTS:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _GIVEN_PORTS.add(port)
            return int(sock.getsockname()[1])
    raise SystemExit(f"no free port in BENCH_PORTS={low}-{high}")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def python_build() -> str:
    """The interpreter's configure flags for profile-guided and link-time
    optimization (pyenv builds without them unless told, the official Python
    images with both). Distributions may optimize without passing these flags
    to configure (Debian does), so "without" means: not asked for at configure."""
    import shlex
    import sysconfig

    flags = shlex.split(str(sysconfig.get_config_var("CONFIG_ARGS") or ""))
    pgo = "--enable-optimizations" in flags
    lto = any(
        f == "--with-lto" or (f.startswith("--with-lto=") and f != "--with-lto=no")
        for f in flags
    )
    asked = (("--enable-optimizations", pgo), ("--with-lto", lto))
    return ", ".join(("with " if on else "without ") + name for name, on in asked)


def python_binary(maps_file: Path = Path("/proc/self/maps")) -> str:
    """The interpreter's executable and whether libpython is a shared library
    loaded beside it (pyenv's --enable-shared: position-independent code,
    calls through the PLT) or linked into it (Debian's and Ubuntu's
    python3.x). A distribution's sysconfig may describe another build of the
    same package, so this reads the running process."""
    executable = os.path.realpath(sys.executable)
    try:
        maps = maps_file.read_text(encoding="utf-8")
    except OSError:
        return f"{executable}, libpython unknown"
    shared = re.search(r"/libpython3\.\d+\S*\.so", maps)
    return f"{executable}, libpython " + ("shared" if shared else "linked in")


def machine(db_kind: str) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "python_build": python_build(),
        "python_binary": python_binary(),
        "database": db_kind,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# --- the fakes of the providers (threads of this process) ------------------------


@dataclass
class Accepted:
    """A reply a fake provider accepted: when, to whom, what."""

    at: float
    address: str
    text: str


class ServiceTimer:
    """ASGI middleware that records how long the fake took for each request."""

    def __init__(self, app: Any, durations: list[float]) -> None:
        self.app = app
        self.durations = durations

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Time one request (lifespan and other scopes pass through)."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.durations.append(time.perf_counter() - started)


class LateAnswer:
    """ASGI middleware: every answer leaves `delay` seconds after the fake has
    handled the request (a provider's latency). A client cut off meanwhile (a
    killed gateway) sent a message that arrived but whose id it never learnt."""

    def __init__(self, app: Any, delay: float) -> None:
        self.app = app
        self.delay = delay

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Hold the response's start for `delay` seconds."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return

        async def late(message: Any) -> None:
            if message.get("type") == "http.response.start":
                await asyncio.sleep(self.delay)
            await send(message)

        await self.app(scope, receive, late)


STATUS_CALLBACKS = ("sent", "delivered")
"""The delivery statuses the fake Twilio posts back for each SMS, as Twilio does
for a message with a StatusCallback (`--no-status-callbacks`: none)."""


def _make_fakes(
    answer_delay: float = 0.0, status_callbacks: tuple[str, ...] = ()
) -> tuple[Any, Any]:
    """The fake Twilio and Telegram APIs, recording when each reply was accepted;
    `answer_delay`: seconds each answer is held after the request was handled;
    `status_callbacks`: the statuses Twilio's fake posts back for each SMS."""
    from tests.fakes.telegram_api import FakeTelegramApi
    from tests.fakes.twilio_api import Call, FakeTwilioApi

    class BenchTwilioApi(FakeTwilioApi):
        def __init__(self) -> None:
            super().__init__(
                account_sid=TWILIO_SID,
                auth_token=TWILIO_TOKEN,
                status_callbacks=status_callbacks,
            )
            self.accepted: list[Accepted] = []
            self.durations: list[float] = []
            self.on_accept: Callable[[Accepted], None] = lambda reply: None
            self.app.add_middleware(ServiceTimer, durations=self.durations)
            if answer_delay > 0:
                self.app.add_middleware(LateAnswer, delay=answer_delay)

        def _record(self, call: Call) -> None:
            super()._record(call)
            if call.status == 201:
                reply = Accepted(
                    time.monotonic(), call.params["To"], call.params["Body"]
                )
                self.accepted.append(reply)
                self.on_accept(reply)

    class BenchTelegramApi(FakeTelegramApi):
        def __init__(self) -> None:
            super().__init__()
            self.accepted: list[Accepted] = []
            self.durations: list[float] = []
            self.on_accept: Callable[[Accepted], None] = lambda reply: None
            self.app.add_middleware(ServiceTimer, durations=self.durations)
            if answer_delay > 0:
                self.app.add_middleware(LateAnswer, delay=answer_delay)

        def _record(self, method: str, params: dict[str, Any], status: int) -> None:
            super()._record(method, params, status)
            if method == "sendMessage" and status == 200:
                reply = Accepted(
                    time.monotonic(),
                    str(params.get("chat_id")),
                    str(params.get("text", "")),
                )
                self.accepted.append(reply)
                self.on_accept(reply)

    return BenchTwilioApi(), BenchTelegramApi()


def fake_thread_id(fake: Any) -> int | None:
    """The native id of a fake's server thread (for its CPU time)."""
    thread: threading.Thread | None = getattr(fake, "_thread", None)
    return thread.native_id if thread is not None else None


# --- the fake Rasa (its own process) ---------------------------------------------


def serve_fake_rasa(port: int, delay_ms: float) -> None:
    """Serve tests.fakes.rasa.FakeRasa on 127.0.0.1:port, plus /bench/stats."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from tests.fakes.rasa import FakeRasa

    fake = FakeRasa()
    fake.default_delay = delay_ms / 1000

    async def stats(request: Request) -> JSONResponse:
        received = fake.received
        return JSONResponse(
            {
                "answered": len(received),
                "distinct": len({(r.sender, r.message) for r in received}),
                "senders": sorted({r.sender for r in received}),
            }
        )

    async def health(request: Request) -> JSONResponse:
        """Stands in for the action server's /health (the gateway checks it)."""
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/bench/stats", stats),
            Route("/health", health),
            Mount("/", app=fake.app),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- processes and the database ---------------------------------------------------


def _tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def start_process(
    command: list[str], env: dict[str, str], log: Path, ready_url: str
) -> subprocess.Popen[bytes]:
    """Start a process and wait until `ready_url` answers 200."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{command[2:]} exited:\n{_tail(log)}")
            try:
                if client.get(ready_url).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    stop_process(proc)
    raise RuntimeError(
        f"{ready_url} not ready after {START_TIMEOUT:.0f}s:\n{_tail(log)}"
    )


def stop_process(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, then SIGKILL if it does not stop; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def clean_env() -> dict[str, str]:
    """This environment without any of the gateway's own settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}


@contextmanager
def database(
    url: str | None, work: Path, prefix: str = "bench_gateway_"
) -> Iterator[tuple[str, str]]:
    """A fresh database for the gateway: its URL and a description of its kind.

    No URL: a SQLite file in `work`. A PostgreSQL URL: a new database on that server
    (named `prefix` + random hex), dropped afterwards. A SQLite URL: used as is, if
    the file does not exist yet.
    """
    if not url:
        yield f"sqlite:///{work}/gateway.db", f"SQLite {sqlite3.sqlite_version}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and Path(parsed.database).exists():
            raise SystemExit(f"{parsed.database} exists: give a new SQLite file")
        yield url, f"SQLite {sqlite3.sqlite_version}"
        return
    if backend != "postgresql":
        raise SystemExit(f"unsupported database {backend!r}: SQLite or PostgreSQL")
    admin = create_engine(
        url,
        future=True,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    name = f"{os.environ.get('BENCH_DB_PREFIX', '')}{prefix}{uuid.uuid4().hex[:12]}"
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


def table_counts(url: str) -> dict[str, Any]:
    """Rows the gateway left: conversations, inbox and outbox by status."""
    from sqlalchemy import func, select

    from bot.db import make_engine
    from bot.messages.models import Conversation, InboxMessage, OutboxMessage

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            conversations = connection.execute(
                select(func.count()).select_from(Conversation)
            ).scalar_one()
            counts: dict[str, Any] = {"conversations": int(conversations)}
            for name, model in (("inbox", InboxMessage), ("outbox", OutboxMessage)):
                rows = connection.execute(
                    select(model.status, func.count()).group_by(model.status)
                ).all()
                counts[name] = {str(status): int(n) for status, n in rows}
    finally:
        engine.dispose()
    return counts


def log_summary(log: Path) -> dict[str, Any]:
    """Warnings and errors in the gateway's log, counted by level and logger."""
    levels: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    tracebacks = 0
    pattern = re.compile(r" (WARNING|ERROR|CRITICAL) ([\w.]+): (.*)")
    for line in _tail(log, 50_000_000).splitlines():
        if line.startswith("Traceback"):
            tracebacks += 1
        found = pattern.search(line)
        if found:
            levels[found.group(1)] += 1
            message = re.sub(r"\d+(\.\d+)?", "#", found.group(3))[:80]
            sources[f"{found.group(1)} {found.group(2)}: {message}"] += 1
    return {
        "by_level": dict(levels),
        "tracebacks": tracebacks,
        "most_common": sources.most_common(8),
    }


# --- the load ---------------------------------------------------------------------


@dataclass
class Message:
    """One inbound message of the load, and what happened to its webhook."""

    index: int
    user: int
    seq: int
    channel: str
    address: str
    text: str
    provider_id: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    posted_at: float = 0.0
    acked_at: float = 0.0
    status: int = 0
    attempts: int = 0


def _sms_params(message: Message) -> dict[str, str]:
    return {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": message.provider_id,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": message.provider_id,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": message.text,
        "FromCountry": "ID",
        "To": TWILIO_FROM,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": message.provider_id,
        "AccountSid": TWILIO_SID,
        "From": message.address,
        "ApiVersion": "2010-04-01",
    }


def _telegram_update(message: Message, message_id: int | None = None) -> dict[str, Any]:
    """The update Telegram posts for `message`; `message_id` is its id in the
    chat (default: its number in the person's sequence, counting from 1)."""
    from telegram import Chat, Update, User
    from telegram import Message as TelegramMessage

    chat_id = int(message.address)
    user = User(id=chat_id, first_name=f"Peserta{message.user}", is_bot=False)
    chat = Chat(id=chat_id, type=Chat.PRIVATE, first_name=user.first_name)
    sent = TelegramMessage(
        message_id=message.seq + 1 if message_id is None else message_id,
        date=datetime.now(timezone.utc),
        chat=chat,
        from_user=user,
        text=message.text,
    )
    update: dict[str, Any] = Update(int(message.provider_id), message=sent).to_dict()
    return update


def build_load(count: int, users: int, base_url: str) -> list[Message]:
    """N messages round-robin over U users (even users SMS, odd users Telegram),
    each with the exact request its provider would send."""
    from twilio.request_validator import RequestValidator

    rng = random.Random(SEED)  # noqa: S311 (message ids, not secrets)
    validator = RequestValidator(TWILIO_TOKEN)
    messages = []
    for index in range(count):
        user, seq = index % users, index // users
        sms = user % 2 == 0
        message = Message(
            index=index,
            user=user,
            seq=seq,
            channel=SMS if sms else TELEGRAM,
            address=f"+62812{user:08d}" if sms else str(TELEGRAM_CHAT_BASE + user),
            text=f"mau tanya syarat daftar prakerja u{user} m{seq}",
            provider_id=(
                f"SM{rng.getrandbits(128):032x}" if sms else str(UPDATE_ID_BASE + index)
            ),
        )
        if sms:
            params = _sms_params(message)
            signature = validator.compute_signature(base_url + SMS_PATH, params)
            message.body = urlencode(params).encode("ascii")
            message.headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
                "I-Twilio-Idempotency-Token": uuid.UUID(int=rng.getrandbits(128)).hex,
            }
        else:
            message.body = json.dumps(_telegram_update(message)).encode("utf-8")
            message.headers = {
                "Content-Type": "application/json",
                "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
            }
        messages.append(message)
    return messages


async def post(
    client: aiohttp.ClientSession, message: Message
) -> tuple[int, float, float]:
    """POST a webhook as its provider would, retrying transport errors and 5xx;
    the final status, the time of the first attempt and of the answer."""
    path = SMS_PATH if message.channel == SMS else TELEGRAM_PATH
    first = time.monotonic()
    status = 0
    for attempt in range(POST_ATTEMPTS):
        message.attempts += 1
        status = await post_status(
            client, path, data=message.body, headers=message.headers
        )
        if 200 <= status < 500:
            break
        if attempt + 1 < POST_ATTEMPTS:
            await asyncio.sleep(0.5 * (attempt + 1))
    return status, first, time.monotonic()


async def first_pass(
    client: aiohttp.ClientSession,
    messages: list[Message],
    users: int,
    concurrency: int,
    deadline: float,
) -> None:
    """Post every message once: users at once, each user's messages in order."""
    gate = asyncio.Semaphore(concurrency)
    by_user: list[list[Message]] = [[] for _ in range(users)]
    for message in messages:
        by_user[message.user].append(message)

    async def person(own: list[Message]) -> None:
        for message in own:
            if time.monotonic() > deadline:
                return
            async with gate:
                result = await post(client, message)
            message.status, message.posted_at, message.acked_at = result

    await asyncio.gather(*(person(own) for own in by_user if own))


async def closed_loop(
    client: aiohttp.ClientSession,
    messages: list[Message],
    users: int,
    fakes: dict[str, Any],
    deadline: float,
) -> None:
    """Post every message once, each user waiting for the answer to a message
    before sending the next (all users at once: `users` conversations in flight)."""
    loop = asyncio.get_running_loop()
    answered: dict[tuple[int, int], asyncio.Event] = {
        (m.user, m.seq): asyncio.Event() for m in messages
    }

    def arrived(reply: Accepted) -> None:  # in a fake's thread
        tag = TAG.search(reply.text)
        event = answered.get((int(tag[1]), int(tag[2]))) if tag else None
        if event is not None:
            loop.call_soon_threadsafe(event.set)

    for fake in fakes.values():
        fake.on_accept = arrived
    by_user: list[list[Message]] = [[] for _ in range(users)]
    for message in messages:
        by_user[message.user].append(message)

    async def person(own: list[Message]) -> None:
        for message in own:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            result = await post(client, message)
            message.status, message.posted_at, message.acked_at = result
            try:
                await asyncio.wait_for(
                    answered[(message.user, message.seq)].wait(), left
                )
            except asyncio.TimeoutError:
                return

    try:
        await asyncio.gather(*(person(own) for own in by_user if own))
    finally:
        for fake in fakes.values():
            fake.on_accept = lambda reply: None


async def redeliver(
    client: aiohttp.ClientSession,
    messages: list[Message],
    concurrency: int,
    deadline: float,
) -> list[tuple[int, float]]:
    """Post the same requests again (a provider's retry); status and latency."""
    gate = asyncio.Semaphore(concurrency)
    results: list[tuple[int, float]] = []

    async def again(message: Message) -> None:
        if time.monotonic() > deadline:
            return
        async with gate:
            status, first, done = await post(client, message)
        results.append((status, done - first))

    await asyncio.gather(*(again(message) for message in messages))
    return results


# --- one run ----------------------------------------------------------------------


@dataclass
class Snapshot:
    """CPU seconds of every part at one moment."""

    at: float
    gateway: float
    rasa: float
    bench: float
    fakes: float


@dataclass
class Run:
    """Raw observations of one run, analysed by `analyse`."""

    messages: list[Message]
    redelivered: list[Message]
    redelivery: list[tuple[int, float]]
    replies: dict[str, list[Accepted]]
    replies_at_completion: int
    completed: bool
    rasa_stats: dict[str, Any]
    fake_requests: dict[str, int]
    fake_durations: dict[str, list[float]]
    cpu_start: Snapshot
    cpu_end: Snapshot
    status_callbacks: list[tuple[str, str, int]] = field(default_factory=list)
    """(message sid, status, HTTP status) of each status callback made."""
    status_callback_errors: list[str] = field(default_factory=list)
    """The transport error of each status callback that got no answer."""


async def drive(
    base_url: str,
    rasa_url: str,
    messages: list[Message],
    users: int,
    concurrency: int,
    fakes: dict[str, Any],
    snapshot: Callable[[], Snapshot],
    alive: Callable[[], bool],
    deadline: float,
    closed: bool = False,
) -> Run:
    """Post the load, redeliver 10%, wait for every reply, then for any extra one."""
    expected = len(messages)
    redelivered = random.Random(SEED + 1).sample(  # noqa: S311
        messages, round(len(messages) * REDELIVER_SHARE)
    )

    def received() -> int:
        return sum(len(fake.accepted) for fake in fakes.values())

    async with client_session(REQUEST_TIMEOUT, base_url, concurrency) as client:
        cpu_start = snapshot()
        if closed:
            await closed_loop(client, messages, users, fakes, deadline)
        else:
            await first_pass(client, messages, users, concurrency, deadline)
        redelivery = await redeliver(client, redelivered, concurrency, deadline)
        while received() < expected and time.monotonic() < deadline and alive():
            await asyncio.sleep(0.02)
        sms = fakes[SMS]
        while (
            len(sms.callbacks) < len(sms.status_callbacks) * len(sms.accepted)
            and time.monotonic() < deadline
            and alive()
        ):  # the replies' delivery statuses are part of their cost
            await asyncio.sleep(0.02)
        cpu_end = snapshot()
        at_completion = received()
        await asyncio.sleep(min(SETTLE_SECONDS, max(0.0, deadline - time.monotonic())))
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, trust_env=False) as stats:
        rasa_stats = (await stats.get(f"{rasa_url}/bench/stats")).json()
    return Run(
        messages=messages,
        redelivered=redelivered,
        redelivery=redelivery,
        replies={name: list(fake.accepted) for name, fake in fakes.items()},
        replies_at_completion=at_completion,
        completed=at_completion >= expected,
        rasa_stats=rasa_stats,
        fake_requests={name: len(fake.calls) for name, fake in fakes.items()},
        fake_durations={name: list(fake.durations) for name, fake in fakes.items()},
        cpu_start=cpu_start,
        cpu_end=cpu_end,
        status_callbacks=list(fakes[SMS].callbacks),
        status_callback_errors=list(fakes[SMS].callback_errors),
    )


def _latencies(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": ms(percentile(values, 50)),
        "p95_ms": ms(percentile(values, 95)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(max(values, default=0.0)),
    }


def analyse(run: Run, users: int) -> dict[str, Any]:
    """Ingest and end-to-end rates, latencies and the correctness checks."""
    messages = run.messages
    by_key = {(m.user, m.seq): m for m in messages}
    got: dict[int, list[Accepted]] = {m.index: [] for m in messages}
    per_user: dict[int, list[int]] = {}
    unmatched = misrouted = 0
    for channel, replies in run.replies.items():
        for reply in replies:  # in the order the fake accepted them
            tag = TAG.search(reply.text)
            message = by_key.get((int(tag[1]), int(tag[2]))) if tag else None
            if message is None or message.channel != channel:
                unmatched += 1
                continue
            if reply.address != message.address:
                misrouted += 1
            got[message.index].append(reply)
            per_user.setdefault(message.user, []).append(message.seq)

    acked = [m for m in messages if m.status == 200]
    start = min((m.posted_at for m in acked), default=0.0)
    ingest: dict[str, Any] = {}
    end_to_end: dict[str, Any] = {}
    for name, group in (
        ("all", messages),
        (SMS, [m for m in messages if m.channel == SMS]),
        (TELEGRAM, [m for m in messages if m.channel == TELEGRAM]),
    ):
        ok = [m for m in group if m.status == 200]
        window = max((m.acked_at for m in ok), default=start) - start
        ingest[name] = {
            "messages": len(group),
            "acknowledged": len(ok),
            "seconds": round(window, 3),
            "per_second": round(len(ok) / window, 1) if window > 0 else 0.0,
            **_latencies([m.acked_at - m.posted_at for m in ok]),
        }
        firsts = [(m, got[m.index][0].at) for m in group if got[m.index]]
        last = max((at for _, at in firsts), default=start)
        seconds = last - start
        end_to_end[name] = {
            "replied": len(firsts),
            "seconds": round(seconds, 3),
            "replies_per_second": round(len(firsts) / seconds, 1) if seconds else 0.0,
            "drain_after_last_ack_s": round(last - (start + window), 3),
            **_latencies([at - m.posted_at for m, at in firsts]),
        }

    counts = [len(replies) for replies in got.values()]
    redelivered_ok = sum(1 for status, _ in run.redelivery if status == 200)
    extra = sum(len(r) for r in run.replies.values()) - run.replies_at_completion
    redelivered_extra = sum(max(0, len(got[m.index]) - 1) for m in run.redelivered)
    order_kept = sum(1 for seqs in per_user.values() if seqs == sorted(seqs))
    addresses = {m.address for m in messages}
    senders = set(run.rasa_stats.get("senders", []))
    correctness = {
        "status_callbacks": len(run.status_callbacks),
        "status_callbacks_failed": sum(
            1 for _, _, code in run.status_callbacks if code != 200
        ),
        "status_callback_errors": sorted(set(run.status_callback_errors)),
        "acknowledged": len(acked),
        "not_acknowledged": len(messages) - len(acked),
        "exactly_one_reply": sum(1 for c in counts if c == 1),
        "no_reply": sum(1 for c in counts if c == 0),
        "duplicate_replies": sum(c - 1 for c in counts if c > 1),
        "unmatched_replies": unmatched,
        "misrouted_replies": misrouted,
        "users_in_order": order_kept,
        "users_with_replies": len(per_user),
        "users": users,
        "redelivered": len(run.redelivered),
        "redelivered_acknowledged": redelivered_ok,
        "redelivered_extra_replies": redelivered_extra,
        "replies_after_completion": extra,
        "rasa_turns": run.rasa_stats.get("answered", 0),
        "rasa_distinct_turns": run.rasa_stats.get("distinct", 0),
        "rasa_saw_raw_address": len(senders & addresses),
        "completed_before_timeout": run.completed,
    }
    correctness["passed"] = (
        run.completed
        and correctness["exactly_one_reply"] == len(messages)
        and not (unmatched or misrouted or extra)
        and order_kept == len(per_user)
        and redelivered_ok == len(run.redelivered)
        and correctness["rasa_turns"] == len(messages)
        and correctness["rasa_distinct_turns"] == len(messages)
        and not correctness["rasa_saw_raw_address"]
        and not correctness["status_callbacks_failed"]
    )
    wall = run.cpu_end.at - run.cpu_start.at
    cpu = {
        "window_s": round(wall, 3),
        **{
            f"{part}_cpu_s": round(
                getattr(run.cpu_end, part) - getattr(run.cpu_start, part), 2
            )
            for part in ("gateway", "rasa", "bench", "fakes")
        },
    }
    for part in ("gateway", "rasa", "bench", "fakes"):
        used = cpu[f"{part}_cpu_s"]
        cpu[f"{part}_core_share"] = round(used / wall, 2) if wall > 0 else 0.0
    per_message = cpu["gateway_cpu_s"] / len(messages) if messages else 0.0
    cpu["gateway_cpu_ms_per_message"] = ms(per_message)
    cpu["gateway_messages_per_core_second"] = (
        round(1 / per_message, 1) if per_message else 0.0
    )
    fakes = {
        name: {
            "requests": run.fake_requests[name],
            "accepted_replies": len(run.replies[name]),
            "service_p50_ms": ms(percentile(run.fake_durations[name], 50)),
            "service_p99_ms": ms(percentile(run.fake_durations[name], 99)),
        }
        for name in run.replies
    }
    return {
        "ingest": ingest,
        "end_to_end": end_to_end,
        "redelivery_ack": _latencies([d for _, d in run.redelivery]),
        "correctness": correctness,
        "cpu": cpu,
        "fakes": fakes,
    }


BACKPRESSURE_OFF = 10**9
"""A bound or threshold (seconds, messages) that a benchmark run never reaches."""


def telegram_pacing_env(args: argparse.Namespace) -> dict[str, str]:
    """The gateway's Telegram pacing raised for a run (`--telegram-per-second`,
    `--telegram-chat-per-second`); empty when neither is given. People who
    write again the instant their answer comes are otherwise held to Telegram's
    one message a second per chat; the fake Bot API enforces neither."""
    env = {}
    if args.telegram_per_second:
        env["TELEGRAM_MESSAGES_PER_SECOND"] = str(args.telegram_per_second)
    if args.telegram_chat_per_second:
        env["TELEGRAM_CHAT_MESSAGES_PER_SECOND"] = str(args.telegram_chat_per_second)
    return env


def gateway_env(
    work: Path, db_url: str, port: int, rasa_url: str, twilio: Any, telegram: Any
) -> dict[str, str]:
    """The gateway's environment: test mode, its database, the fakes' URLs."""
    base_url = f"http://127.0.0.1:{port}"
    return {
        **clean_env(),
        "PRAKERJA_ENV": "test",
        "PRAKERJA_VAR_DIR": str(work / "var"),
        "DATABASE_URL": db_url,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "PUBLIC_BASE_URL": base_url,
        "RASA_URL": rasa_url,
        "ACTIONS_URL": rasa_url,  # the fake Rasa answers /health for the actions
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM_NUMBER": TWILIO_FROM,
        "TWILIO_API_URL": twilio.url,
        "TELEGRAM_TOKEN": telegram.token,
        "TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
        "TELEGRAM_API_URL": telegram.url,
        # The load is checked for exactly one reply per message: keep the
        # back-pressure (wait notices, one answer to a stale burst, messages
        # beyond a person's cap left unread) out of the way; their cost per
        # message (a count at intake, a look per second) is still measured.
        # tests/gateway/test_backlog.py and test_burst.py check that behaviour.
        "GATEWAY_NOTICE_WAIT": str(BACKPRESSURE_OFF),
        "GATEWAY_MAX_PENDING_PER_CONVERSATION": str(BACKPRESSURE_OFF),
        "GATEWAY_MAX_PENDING": str(BACKPRESSURE_OFF),
    }


def telegram_pace() -> float:
    """Telegram messages per second the gateway allows itself (per process)."""
    from bot.channels.telegram import RateLimiter

    default = inspect.signature(RateLimiter).parameters["overall_per_second"].default
    return float(default)


def run_benchmark(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Start everything, drive the load, stop everything, analyse."""
    from bot.gateway.options import GatewayOptions

    deadline = time.monotonic() + args.timeout
    twilio, telegram = _make_fakes(
        status_callbacks=() if args.no_status_callbacks else STATUS_CALLBACKS
    )
    fakes = {SMS: twilio, TELEGRAM: telegram}
    log = work / "gateway.log"
    with ExitStack() as stack:  # unwinds in reverse: processes, database, fakes
        for fake in (twilio, telegram):
            fake.start()
            stack.callback(fake.stop)
        db_url, db_kind = stack.enter_context(database(args.database_url, work))
        rasa_port, gateway_port = free_port(), free_port()
        rasa_url = f"http://127.0.0.1:{rasa_port}"
        rasa = start_process(
            [sys.executable, "-m", "bench.gateway", "--serve-fake-rasa",
             str(rasa_port), "--rasa-delay-ms", str(args.rasa_delay_ms)],
            clean_env(), work / "rasa.log", f"{rasa_url}/status",
        )  # fmt: skip
        stack.callback(stop_process, rasa)
        env = gateway_env(work, db_url, gateway_port, rasa_url, twilio, telegram)
        env.update(telegram_pacing_env(args))
        if args.redis_url:
            env["REDIS_URL"] = args.redis_url
        base_url = env["PUBLIC_BASE_URL"]
        gateway = start_process(
            [sys.executable, "-m", "bench.gateway_floor" if args.floor else "bot"],
            env, log, f"{base_url}/healthz",
        )  # fmt: skip
        stack.callback(stop_process, gateway)
        messages = build_load(args.messages, args.users, base_url)
        threads = [fake_thread_id(fake) for fake in fakes.values()]

        def snapshot() -> Snapshot:
            return Snapshot(
                at=time.monotonic(),
                gateway=process_cpu(gateway.pid),
                rasa=process_cpu(rasa.pid),
                bench=sum(os.times()[:2]),
                fakes=sum(thread_cpu(tid) for tid in threads),
            )

        where = machine(db_kind)
        backends = None
        if db_url.startswith("postgresql"):  # its backends' CPU, for the run
            backends = BackendCpu(args.database_url, db_url.rsplit("/", 1)[1])
            backends.start()
        run = asyncio.run(
            drive(
                base_url, rasa_url, messages, args.users, args.concurrency,
                fakes, snapshot, lambda: gateway.poll() is None, deadline,
                args.closed_loop,
            )
        )  # fmt: skip
        postgres_cpu_s = None if backends is None else backends.stop()
        tables = {} if args.floor else table_counts(db_url)  # the floor stores none
    result = analyse(run, args.users)
    if postgres_cpu_s is not None:
        result["cpu"]["postgres_cpu_s"] = round(postgres_cpu_s, 2)
        result["cpu"]["postgres_cpu_ms_per_message"] = ms(
            postgres_cpu_s / max(1, len(run.messages))
        )
    result["database_rows"] = tables
    result["gateway_log"] = log_summary(log)
    where["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = where
    result["parameters"] = {
        "messages": args.messages,
        "users": args.users,
        "concurrency": args.users if args.closed_loop else args.concurrency,
        "closed_loop": args.closed_loop,
        "redis": bool(args.redis_url),
        "rasa_delay_ms": args.rasa_delay_ms,
        "timeout_s": args.timeout,
        "redelivered_share": REDELIVER_SHARE,
        "gateway_options": asdict(GatewayOptions()),
        "telegram_pace_per_second": args.telegram_per_second or telegram_pace(),
        "telegram_chat_pace_per_second": args.telegram_chat_per_second or 1,
        "floor": args.floor,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return result


# --- report -----------------------------------------------------------------------


def _yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def markdown(result: dict[str, Any]) -> str:
    """The summary table to paste into docs/benchmarks.md."""
    p, m = result["parameters"], result["machine"]
    ingest, e2e, c = result["ingest"], result["end_to_end"], result["correctness"]
    cpu, fakes = result["cpu"], result["fakes"]
    channels = ("all", SMS, TELEGRAM)

    def row(label: str, cell: Callable[[str], str]) -> str:
        return f"| {label} | " + " | ".join(cell(ch) for ch in channels) + " |"

    clean = not (
        c["duplicate_replies"] or c["unmatched_replies"] or c["misrouted_replies"]
    )
    no_extra = not (c["redelivered_extra_replies"] or c["replies_after_completion"])
    rasa_once = (
        c["rasa_distinct_turns"] == c["rasa_turns"] == p["messages"]
        and not c["rasa_saw_raw_address"]
    )
    in_order = c["users_in_order"] == c["users_with_replies"]
    lines = [
        ("### The gateway's HTTP floor (`--floor`: no database, no queue)"
         if p.get("floor") else f"### Gateway: one process, {m['database']}"),
        "",
        *(["The floor keeps no order, skips no redelivery and counts no turn: "
           "the checks below do not apply to it; its CPU per message does.", ""]
          if p.get("floor") else []),
        f"{p['messages']} messages from {p['users']} users "
        f"({ingest[SMS]['messages']} SMS, {ingest[TELEGRAM]['messages']} Telegram), "
        + (f"closed loop: {p['users']} people in flight, each waiting for the "
           "answer, " if p.get("closed_loop") else
           f"at most {p['concurrency']} webhooks in flight, ")
        + ("pacing and send marks in Redis, " if p.get("redis") else "")
        + "fake Rasa turn "
        f"{p['rasa_delay_ms']:g} ms; {m['nproc']} × {m['cpu_model']}, Python "
        f"{m['python']} (configured {m.get('python_build', '?')})"
        + (f" at {m['python_binary']}" if m.get("python_binary") else "")
        + "; load average "
        f"{m['load_average_at_start'][0]} at start, "
        f"{m['load_average_at_end'][0]} at end; {p['date']}.",
        "",
        "| Measure | All | SMS | Telegram |",
        "| --- | ---: | ---: | ---: |",
        row("Webhooks acknowledged per second",
            lambda ch: f"{ingest[ch]['per_second']:g}"),
        row("Ack latency p50 / p95 / p99 (ms)",
            lambda ch: f"{ingest[ch]['p50_ms']:g} / {ingest[ch]['p95_ms']:g} / "
            f"{ingest[ch]['p99_ms']:g}"),
        row("First post to last reply (s)", lambda ch: f"{e2e[ch]['seconds']:g}"),
        row("Replies per second", lambda ch: f"{e2e[ch]['replies_per_second']:g}"),
        row("Post to reply p50 / p95 (ms)",
            lambda ch: f"{e2e[ch]['p50_ms']:g} / {e2e[ch]['p95_ms']:g}"),
        row("Backlog drained after the last ack (s)",
            lambda ch: f"{e2e[ch]['drain_after_last_ack_s']:g}"),
        "",
        "| Check | Result |",
        "| --- | --- |",
        f"| Every reply in before the {p['timeout_s']:g} s timeout | "
        f"{_yes(c['completed_before_timeout'])} |",
        f"| Every message acknowledged | {_yes(not c['not_acknowledged'])} "
        f"({c['acknowledged']}/{p['messages']}) |",
        f"| Every message got exactly one reply | "
        f"{_yes(c['exactly_one_reply'] == p['messages'])} "
        f"({c['exactly_one_reply']}/{p['messages']}; {c['no_reply']} none) |",
        f"| No duplicate, stray or misrouted reply | {_yes(clean)} "
        f"({c['duplicate_replies']} / {c['unmatched_replies']} / "
        f"{c['misrouted_replies']}) |",
        f"| Per-user order kept | {_yes(in_order)} "
        f"({c['users_in_order']}/{c['users_with_replies']} users) |",
        f"| Every delivery status posted back answered 200 | "
        f"{_yes(not c['status_callbacks_failed'])} ({c['status_callbacks']} posted, "
        f"{c['status_callbacks_failed']} not"
        + (f": {', '.join(c['status_callback_errors'])}" if c["status_callback_errors"]
           else "") + ") |",
        f"| {c['redelivered']} messages redelivered: no extra reply | "
        f"{_yes(no_extra)} ({c['redelivered_acknowledged']} acknowledged, "
        f"{c['redelivered_extra_replies']} extra) |",
        f"| Rasa asked once per message, never with a raw address | "
        f"{_yes(rasa_once)} ({c['rasa_turns']} turns) |",
        "",
        f"CPU over the {cpu['window_s']:g} s run (share of one core): gateway "
        f"{cpu['gateway_core_share']:g}, fake Rasa {cpu['rasa_core_share']:g}, "
        f"load generator and fakes {cpu['bench_core_share']:g} (fakes' threads "
        f"{cpu['fakes_core_share']:g})"
        + (
            f"; PostgreSQL's backends {cpu['postgres_cpu_ms_per_message']:g} ms "
            "a message"
            if "postgres_cpu_s" in cpu
            else ""
        )
        + f". Fakes: Twilio {fakes[SMS]['requests']} "
        f"requests (p99 {fakes[SMS]['service_p99_ms']:g} ms), Telegram "
        f"{fakes[TELEGRAM]['requests']} requests (p99 "
        f"{fakes[TELEGRAM]['service_p99_ms']:g} ms).",
        "",
        f"Gateway CPU per message (webhook, Rasa call, reply sent; redeliveries "
        f"included): {cpu['gateway_cpu_ms_per_message']:g} ms, so about "
        f"{cpu['gateway_messages_per_core_second']:g} messages per second per fully "
        f"used core. Telegram sends are paced by the gateway at "
        f"{p['telegram_pace_per_second']:g} messages per second per process "
        + ("(Telegram's limit for one bot)." if p["telegram_pace_per_second"]
           == telegram_pace() else "(raised for this run: Telegram's own limit "
           f"is {telegram_pace():g} per bot)."),
        f"Each chat: {p['telegram_chat_pace_per_second']:g} a second after a "
        "burst of 3" + (" (Telegram's rule)." if p["telegram_chat_pace_per_second"]
                        == 1 else " (raised for this run: Telegram's rule is 1)."),
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    """Parse the arguments, run once, write the JSON, print the summary."""
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server URL (a fresh database is created on it and "
        "dropped), or a new SQLite file; default: SQLite in a temporary folder",
    )
    parser.add_argument("--rasa-delay-ms", type=float, default=0.0)
    parser.add_argument(
        "--closed-loop",
        action="store_true",
        help="each of --users people waits for the answer before the next message "
        "(--users conversations in flight; --concurrency is not used)",
    )
    parser.add_argument(
        "--telegram-per-second",
        type=int,
        help="the gateway's Telegram pacing for this run (default: Telegram's "
        "limit for one bot, as in production)",
    )
    parser.add_argument(
        "--telegram-chat-per-second",
        type=int,
        help="the gateway's pace for one chat after its burst (default: one a "
        "second, Telegram's rule); people in --closed-loop write again the "
        "moment the answer comes, which no person does",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="run bench.gateway_floor in place of the gateway: the same HTTP "
        "work per message (parsers, Rasa client, senders) without the database",
    )
    parser.add_argument(
        "--no-status-callbacks",
        action="store_true",
        help="the fake Twilio posts no delivery statuses back (by default it "
        "posts 'sent' and 'delivered' for each SMS, as Twilio does)",
    )
    parser.add_argument(
        "--redis-url",
        help="REDIS_URL for the gateway, as in the scaled mode: the providers' "
        "pacing shared through Redis, and each send marked there as it leaves "
        "(bot.gateway.send_marks); default: none, as `make run`",
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--keep", action="store_true", help="keep logs and files")
    parser.add_argument("--serve-fake-rasa", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake_rasa:
        serve_fake_rasa(args.serve_fake_rasa, args.rasa_delay_ms)
        return
    if not (0 < args.users <= args.messages and args.concurrency > 0):
        parser.error("need 0 < --users <= --messages and --concurrency > 0")
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    try:
        result = run_benchmark(args, work)
    finally:
        if args.keep:
            print(f"Logs and files kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gateway.json").write_text(
        json.dumps(result, indent=2) + "\n", encoding="utf-8"
    )
    print(markdown(result))
    log = result["gateway_log"]
    if log["by_level"]:
        print(f"\nGateway log: {log['by_level']}, {log['tracebacks']} tracebacks")
        for line, count in log["most_common"]:
            print(f"  {count} × {line}")
    if not result["correctness"]["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
