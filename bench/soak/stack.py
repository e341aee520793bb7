"""The stack: the seeded database, two gateways, Rasa, the action server, and
the fakes of the providers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.gateway import (
    SMS,
    STATUS_CALLBACKS,
    TELEGRAM,
    clean_env,
    free_port,
)
from bench.soak.people import Person
from bot.launcher import ACTIONS_ENV, RASA_ENV, RASA_READY_PATH

ROOT = Path(__file__).resolve().parents[2]

MODEL = ROOT / "models" / "prakerja.tar.gz"
BIN = Path(sys.executable).parent

TELEGRAM_SECRET = "soak-telegram-secret-token"  # noqa: S105 (a local fake's)
TWILIO_TOKEN = "soak-twilio-auth-token"  # noqa: S105 (a local fake's)
TWILIO_SID = "AC" + "1" * 32
TWILIO_FROM = "+15550002222"

TELEGRAM_LATENCY = 0.2
"""Seconds the fake Bot API takes per sendMessage (about a real round trip), so a
gateway kill can find sends in flight, as it would in production."""
START_TIMEOUT = 300.0  # Rasa loads its model slowly on a busy machine
STOP_TIMEOUT = 20.0


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
        self._listeners: list[Callable[[str], object]] = []
        self._notices: dict[str, bool] = {}  # text -> is a wait notice

    def listen(self, listener: Callable[[str], object]) -> Callable[[], None]:
        """Call `listener(address)` after each reply is recorded (in the fake's
        thread: it must hand over to its own loop thread-safely) until the
        returned function is called."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def add(self, channel: str, address: str, text: str) -> None:
        """Record one accepted reply."""
        delivery = Delivery(time.monotonic(), channel, address, text)
        with self._lock:
            self.all.append(delivery)
            self._by_address[address].append(delivery)
        for listener in self._listeners:
            listener(address)

    def to(self, address: str) -> list[Delivery]:
        """The replies to one address so far."""
        with self._lock:
            return list(self._by_address.get(address, ()))

    def count(self, address: str) -> int:
        """How many replies one address got so far."""
        with self._lock:
            return len(self._by_address.get(address, ()))

    def answers(self, address: str) -> list[Delivery]:
        """The replies to one address so far that answer a message: without
        the gateway's wait notices (`bot.gateway.wait_notice`), after which a
        person keeps waiting."""
        return [d for d in self.to(address) if not self._is_notice(d.text)]

    def _is_notice(self, text: str) -> bool:
        """`bot.gateway.wait_notice.is_notice`, asked once per distinct text
        (a waiting person's replies are looked at again at every wake-up, and
        most answers are the same texts)."""
        from bot.gateway.wait_notice import is_notice

        known = self._notices.get(text)
        if known is None:
            known = self._notices[text] = is_notice(text)
        return known


def make_fakes(
    deliveries: Deliveries, token: str = "", telegram_latency: float = 0.0
) -> tuple[Any, Any]:
    """The fake Twilio and Telegram APIs, recording into `deliveries` (token: the
    fake bot's, else the fakes' default; telegram_latency: seconds per send)."""
    from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramApi
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
        SoakTwilioApi(
            account_sid=TWILIO_SID,
            auth_token=TWILIO_TOKEN,
            status_callbacks=STATUS_CALLBACKS,
        ),
        SoakTelegramApi(token or DEFAULT_TOKEN, latency=telegram_latency),
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


def _repository_endpoints() -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load((ROOT / "endpoints.yml").read_text(encoding="utf-8")))


def tracker_store_type() -> str:
    """The tracker store's `type` in the repository's endpoints.yml (what `make
    run` gives Rasa): the runs use the same class."""
    return str(_repository_endpoints()["tracker_store"]["type"])


def nlg_type() -> str:
    """The response generator's `type` in the repository's endpoints.yml (the
    programme answers are rendered by it)."""
    return str(_repository_endpoints()["nlg"]["type"])


def action_endpoint_options() -> list[str]:
    """The action endpoint's settings but its URL in the repository's
    endpoints.yml, as YAML lines under `action_endpoint:` (the runs call the
    action server as `make run` does, e.g. with Rasa's selective domain)."""
    options = dict(_repository_endpoints()["action_endpoint"])
    options.pop("url", None)
    return [f"  {key}: {json.dumps(value)}" for key, value in options.items()]


def endpoints_yml(db_url: str, actions_port: int, redis_url: str, prefix: str) -> str:
    """Rasa's endpoints for the run: actions, the response generator, the SQL
    tracker store (PostgreSQL or a SQLite file; the types endpoints.yml names)
    and, when `redis_url` is given,
    Redis locks."""
    from sqlalchemy.engine import make_url

    db = make_url(db_url)
    lines = [
        "action_endpoint:",
        f'  url: "http://127.0.0.1:{actions_port}/webhook"',
        *action_endpoint_options(),
        "nlg:",
        f"  type: {nlg_type()}",
        "tracker_store:",
        f"  type: {tracker_store_type()}",
    ]
    if db.get_backend_name() == "sqlite":
        lines += ['  dialect: "sqlite"', f'  db: "{db.database}"']
    else:
        lines += [
            "  dialect: postgresql",
            f'  url: "{db.host or "127.0.0.1"}"',
            f"  port: {db.port or 5432}",
            f'  db: "{db.database}"',
            f'  username: "{db.username or "postgres"}"',
        ]
        if db.password:
            lines.append(f'  password: "{db.password}"')
    if redis_url:
        redis = httpx.URL(redis_url)
        lines += [
            "lock_store:",
            "  type: redis",
            f'  url: "{redis.host}"',
            f"  port: {redis.port or 6379}",
            f"  db: {redis.path.strip('/') or '0'}",
            f'  key_prefix: "{prefix}"',
        ]
    return "\n".join(lines) + "\n"


def service_names(kind: str, count: int) -> list[str]:
    """The services of one kind: "rasa" alone, or "rasa1", "rasa2"... (gateways
    are always numbered)."""
    if count == 1 and kind != "gateway":
        return [kind]
    return [f"{kind}{number}" for number in range(1, count + 1)]


def make_services(
    work: Path,
    db_url: str,
    redis_url: str,
    twilio: Any,
    telegram: Any,
    *,
    gateways: int = 2,
    port: Callable[[], int] = free_port,
    tracker_url: str = "",
    rasa: list[str] | None = None,
    model: Path = MODEL,
    rasa_servers: int = 1,
    action_servers: int = 1,
) -> dict[str, Service]:
    """The gateways (two by default), Rasa servers and action servers (one of
    each by default), not started yet, laid out as `make run-scaled` lays them
    out: gateway i talks to Rasa server i mod R, Rasa server j calls action
    server j mod A; the Rasa servers share the tracker store and, with
    `redis_url`, Rasa's Redis lock store.

    port: gives each process its port; tracker_url: Rasa's tracker store (default
    `db_url`); rasa: the command that runs Rasa's CLI (default `rasa`); model: the
    trained model Rasa serves."""
    actions_ports = [port() for _ in range(action_servers)]
    rasa_ports = [port() for _ in range(rasa_servers)]
    gateway_ports = [port() for _ in range(gateways)]
    public = f"http://127.0.0.1:{gateway_ports[0]}"  # all sign against one URL
    prefix = f"soak{uuid.uuid4().hex[:8]}"
    tracker_url = tracker_url or db_url
    shared = {
        **clean_env(),
        "PRAKERJA_ENV": "test",
        "PRAKERJA_POLICY": "2020",
        "PRAKERJA_VAR_DIR": str(work / "var"),
        "DATABASE_URL": db_url,
        "TRACKER_STORE_URL": tracker_url,
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
    services: dict[str, Service] = {}
    for name, actions_port in zip(
        service_names("actions", action_servers), actions_ports, strict=True
    ):
        services[name] = Service(
            name,
            [str(BIN / "rasa"), "run", "actions", "--port", str(actions_port),
             "--actions", "actions"],
            {**shared, **ACTIONS_ENV},
            f"http://127.0.0.1:{actions_port}/health", work / f"{name}.log",
        )  # fmt: skip
    for index, (name, rasa_port) in enumerate(
        zip(service_names("rasa", rasa_servers), rasa_ports, strict=True)
    ):
        endpoints = work / ("endpoints.yml" if index == 0 else f"endpoints-{name}.yml")
        actions_port = actions_ports[index % action_servers]
        endpoints.write_text(
            endpoints_yml(tracker_url, actions_port, redis_url, prefix)
        )
        services[name] = Service(
            name,
            [*(rasa or [str(BIN / "rasa")]), "run", "--enable-api", "--interface",
             "127.0.0.1", "--port", str(rasa_port),
             "--model", str(model), "--endpoints", str(endpoints)],
            {**shared, **RASA_ENV}, f"http://127.0.0.1:{rasa_port}{RASA_READY_PATH}",
            work / f"{name}.log",
        )  # fmt: skip
    for number, gateway_port in enumerate(gateway_ports, start=1):
        rasa_port = rasa_ports[(number - 1) % rasa_servers]
        actions_port = actions_ports[(number - 1) % rasa_servers % action_servers]
        env = {
            **shared,
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(gateway_port),
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
            f"http://127.0.0.1:{gateway_port}/healthz", work / f"gateway{number}.log",
        )  # fmt: skip
    return services


def gateway_urls(services: dict[str, Service]) -> list[str]:
    """Base URLs of the gateways."""
    return [s.env["PUBLIC_BASE_URL"].rsplit(":", 1)[0] + ":" + s.env["GATEWAY_PORT"]
            for name, s in services.items() if name.startswith("gateway")]  # fmt: skip


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
