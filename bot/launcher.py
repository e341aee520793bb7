"""Start the assistant's processes in the foreground and stop them together.

Used by `make run`. First migrates and seeds the database (`python -m bot.seed`:
in development the synthetic NIK population and an open demo batch), then masks
personal data left in Rasa's tracker store (`python -m bot.privacy.tracker_scrub`)
while Rasa is not running, and stops if either fails. Works with or without a
terminal: it never reads stdin, prints the URLs once the servers answer, and on
SIGINT/SIGTERM (or when one process dies) stops every process it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

STOP_GRACE_SECONDS = 45.0  # the gateway drains in-flight Rasa turns (35 s)
READY_TIMEOUT_SECONDS = 300.0
DEFAULT_MODEL = "models/prakerja.tar.gz"
LOOPBACK = "127.0.0.1"
"""Where Rasa and the action server listen: neither authenticates its callers
(the action server trusts the sender id it is given), so only this machine's
gateway may reach them."""
ACTIONS_ENV = {"SANIC_HOST": LOOPBACK, "SANIC_KEEP_ALIVE_TIMEOUT": "30"}
"""The action server's environment. rasa-sdk 3.6 has no --host option: its
server binds to SANIC_HOST. Sanic closes a connection on which no request came
within KEEP_ALIVE_TIMEOUT (5 s by default), a new one included; Rasa opens a new
connection for each action call, so when Rasa's event loop is busy for more than
5 s between connecting and writing the request, the call failed with "Cannot
write to closing transport" and the whole turn was run again (measured with
`make bench-e2e` on a loaded machine, docs/benchmarks.md)."""
RASA_READY_PATH = "/webhooks/gateway/"
"""Rasa is ready once its gateway channel answers 200 here: the model loaded and
the programme answers rendered (`bot.rasa_channel`); before that, 503 and why."""
RASA_ENV = {"TICKET_LOCK_LIFETIME": "15"}
"""Rasa's conversation lock (RedisLockStore, with several Rasa servers) lasts 15 s,
not Rasa's 60: a Rasa killed mid-turn leaves its locks in Redis, and the
restarted one waited out the rest of the minute before answering those people
(seen in the soak). The gateway already runs one turn at a time per
conversation; this lock is the second guard."""


@dataclass(frozen=True)
class Service:
    """One process of the assistant and the URL that tells it is ready."""

    name: str
    command: list[str]
    ready_url: str
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables added to the launcher's environment for this process."""


def services(model: Path, bin_dir: Path) -> list[Service]:
    """The processes `make run` starts, in start order (the gateway is last)."""
    rasa = str(bin_dir / "rasa")
    return [
        Service(
            "actions",
            [rasa, "run", "actions", "--port", "5055", "--actions", "actions"],
            "http://127.0.0.1:5055/health",
            ACTIONS_ENV,
        ),
        Service(
            "rasa",
            [
                rasa, "run", "--interface", LOOPBACK, "--port", "5005",
                "--model", str(model), "--endpoints", "endpoints.yml",
                "--credentials", "credentials.yml",
            ],
            f"http://127.0.0.1:5005{RASA_READY_PATH}",
        ),
        Service(
            "gateway",
            [str(bin_dir / "python"), "-m", "bot"],
            "http://127.0.0.1:8000/healthz",
        ),
    ]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Supervisor:
    """Own a set of child processes; stop all of them on a signal or a death."""

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def start(self, service: Service) -> None:
        """Start one service in its own process group."""
        self.children[service.name] = subprocess.Popen(
            service.command,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **service.env},
        )

    def dead(self) -> list[str]:
        """Names of the services whose process has exited."""
        return [n for n, p in self.children.items() if p.poll() is not None]

    def stop(self, *_: object) -> None:
        """Stop the children in reverse start order (the gateway first, so it can
        finish in-flight turns while Rasa still answers): SIGTERM, then SIGKILL
        after a grace period."""
        self.stopping = True
        for proc in reversed(list(self.children.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def shell(model: Path, bin_dir: Path) -> int:
    """Chat in this terminal: the action server in the background, `rasa shell`."""
    actions = services(model, bin_dir)[0]
    supervisor = Supervisor()
    supervisor.start(actions)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not _answers(actions.ready_url):
            if supervisor.dead() or time.monotonic() > deadline:
                print("launcher: the action server did not start")
                return 1
            time.sleep(0.5)
        command = [
            str(bin_dir / "rasa"), "shell", "--model", str(model),
            "--endpoints", "endpoints.yml",
        ]
        return subprocess.call(command)
    finally:
        supervisor.stop()


def seed_command(bin_dir: Path) -> list[str]:
    """The step before the services start: migrations and seed (`python -m
    bot.seed`; in Kubernetes the migrations Job of deploy/k8s runs it)."""
    return [str(bin_dir / "python"), "-m", "bot.seed"]


def seed_database(bin_dir: Path) -> bool:
    """Migrate and seed the database (`python -m bot.seed`), then scrub Rasa's
    tracker store (`python -m bot.privacy.tracker_scrub`); False if one failed."""
    for command in (
        seed_command(bin_dir),
        [str(bin_dir / "python"), "-m", "bot.privacy.tracker_scrub"],
    ):
        status = subprocess.call(command, stdin=subprocess.DEVNULL)
        if status != 0:
            step = " ".join(command[1:])
            print(f"launcher: python {step} failed (exit {status}); not starting")
            return False
    return True


def main(argv: list[str]) -> int:
    """Seed the database, then run every service until a signal arrives or one
    of them dies."""
    args = argv[1:]
    bin_dir = Path(sys.executable).parent
    if not seed_database(bin_dir):
        return 1
    if args and args[0] == "--shell":
        return shell(Path(args[1] if len(args) > 1 else DEFAULT_MODEL), bin_dir)
    model = Path(args[0] if args else DEFAULT_MODEL)
    return supervise(services(model, bin_dir), _print_ready)


def supervise(wanted: list[Service], on_ready: Callable[[], None]) -> int:
    """Start the services in order, call `on_ready` once all answer, and stop
    them all on SIGINT/SIGTERM or when one dies (exit 1)."""
    supervisor = Supervisor()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        supervisor.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for service in wanted:
        supervisor.start(service)
    pending = {s.name: s.ready_url for s in wanted}
    started = time.monotonic()
    while not supervisor.stopping:
        if supervisor.dead():
            print(f"launcher: {', '.join(supervisor.dead())} stopped; stopping all")
            supervisor.stop()
            return 1
        for name, url in list(pending.items()):
            if _answers(url):
                del pending[name]
                if not pending:
                    on_ready()
        if pending and time.monotonic() - started > READY_TIMEOUT_SECONDS:
            print(f"launcher: {', '.join(pending)} not ready; stopping all")
            supervisor.stop()
            return 1
        time.sleep(0.5)
    supervisor.stop()
    print("launcher: stopped")
    return 0


def _print_ready() -> None:
    print(
        "\nPrakerja assistant is running:\n"
        "  Simulator        http://localhost:8000/simulator (Telegram or SMS)\n"
        "  Agents' console  http://localhost:8000/console "
        "(first account: make supervisor NAME=...)\n"
        "  Gateway          http://localhost:8000/healthz\n"
        "  Rasa REST   POST http://localhost:5005/webhooks/rest/webhook\n"
        "  Actions          http://localhost:5055/health\n"
        "Stop with Ctrl-C.\n",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
