"""Run the real processes: Rasa, the action server and the gateway, on free ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.soak.stack import action_endpoint_options, nlg_type, tracker_store_type
from bot.launcher import RASA_READY_PATH
from tests.conftest import MODEL, ROOT, require

BIN = Path(sys.executable).parent
START_TIMEOUT = 180.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll url until it answers 200; fail with the log if the process dies."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{url} process exited:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} not ready after {START_TIMEOUT}s:\n{log.read_text()[-4000:]}")


def stop(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM to each at once, then SIGKILL to those that do not stop within
    20 s (the wait is the slowest exit, not the sum)."""
    running = [proc for proc in procs if proc.poll() is None]
    for proc in running:
        proc.terminate()
    deadline = time.monotonic() + 20
    for proc in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class RasaStack:
    """Rasa and the action server, running for real (and the gateway, if asked)."""

    rasa_url: str
    actions_url: str
    actions: subprocess.Popen[bytes] | None = None
    """The action server's process (a test may kill it and start another)."""
    gateway_url: str | None = None
    """The gateway's base URL, when `running_rasa_stack` started one."""
    work: Path | None = None
    """Where the processes' logs are (rasa.log, actions.log, gateway.log)."""
    rasa: Starting | None = None
    """Rasa's process as started (`restart_rasa` replaces it)."""

    def restart_rasa(self, while_stopped: Callable[[], None] | None = None) -> None:
        """Stop Rasa (SIGTERM), run `while_stopped`, and start Rasa again with
        the same command, port and settings; returns once it is ready. What it
        kept in memory (the trackers of the turns before) is gone; its tracker
        store is not."""
        assert self.rasa is not None, "this stack did not start Rasa"
        stop(self.rasa.proc)
        if while_stopped is not None:
            while_stopped()
        self.rasa = spawn(
            self.rasa.args, self.rasa.env, self.rasa.log, self.rasa.ready_url
        )
        wait_all([self.rasa])


@dataclass(frozen=True)
class Starting:
    """A process started but not yet ready: the URL that answers 200 when it is,
    and its log (shown when it dies first)."""

    proc: subprocess.Popen[bytes]
    ready_url: str
    log: Path
    args: list[str] = field(default_factory=list)
    env: Mapping[str, str] = field(default_factory=dict)


def spawn(
    args: list[str], env: Mapping[str, str], log: Path, ready_url: str
) -> Starting:
    """Start a process (cwd: the repository, output appended to `log`); do not wait."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    return Starting(proc, ready_url, log, args, env)


def wait_all(starting: list[Starting]) -> None:
    """Wait until every process is ready; stop all of them if one is not.

    The processes load at the same time (Rasa's model, the action server's and
    the gateway's imports), so the wait is the slowest start, not their sum."""
    try:
        for one in starting:
            wait_until_ready(one.ready_url, one.proc, one.log)
    except BaseException:
        stop(*(one.proc for one in starting))
        raise


def spawn_actions(
    work: Path, port: int, env: Mapping[str, str], package: str = "actions"
) -> Starting:
    """Start the action server with `package` on `port`; do not wait."""
    return spawn(
        [str(BIN / "rasa"), "run", "actions", "--port", str(port)]
        + ["--actions", package],
        env,
        work / "actions.log",
        f"http://127.0.0.1:{port}/health",
    )


def start_actions(
    work: Path, port: int, env: Mapping[str, str], package: str = "actions"
) -> subprocess.Popen[bytes]:
    """Start the action server with `package` on `port`; return once it is ready."""
    starting = spawn_actions(work, port, env, package)
    wait_all([starting])
    return starting.proc


def spawn_gateway(work: Path, env_overrides: Mapping[str, str]) -> Starting:
    """Start `python -m bot` with the given settings on a free port; do not wait."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PRAKERJA_ENV": "test",
        "PRAKERJA_VAR_DIR": str(work),
        "DATABASE_URL": f"sqlite:///{work}/gateway.db",
        "GATEWAY_PORT": str(port),
        "PUBLIC_BASE_URL": base,
        **env_overrides,
    }
    return spawn(
        [sys.executable, "-m", "bot"], env, work / "gateway.log", f"{base}/healthz"
    )


def base_url(starting: Starting) -> str:
    """The base URL of a gateway started with `spawn_gateway`."""
    return starting.ready_url.removesuffix("/healthz")


def start_gateway(
    work: Path, env_overrides: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `python -m bot` with the given settings; return it and its base URL
    once it is ready."""
    starting = spawn_gateway(work, env_overrides)
    wait_all([starting])
    return starting.proc, base_url(starting)


@contextmanager
def running_rasa_stack(
    work: Path,
    env_overrides: Mapping[str, str] | None = None,
    tracker_db: Path | None = None,
    actions_package: str = "actions",
    prepare: Callable[[], None] | None = None,
    gateway: Mapping[str, str] | None = None,
) -> Iterator[RasaStack]:
    """Run the trained model's Rasa server and the action server until exit.

    ``env_overrides`` go into both processes' environment (e.g. the gateway's
    DATABASE_URL, so the actions see the same registry); logs go to ``work``.
    ``tracker_db``: keep Rasa's tracker in that SQLite file (the tracker store
    endpoints.yml names) instead of in memory. ``actions_package``: the package the
    action server loads. ``prepare``: run while Rasa loads its model (e.g.
    seeding the database; the action server opens it on first use only).
    ``gateway``: also start the gateway (after ``prepare``) with
    ``env_overrides``, these settings and RASA_URL/ACTIONS_URL of this stack;
    its URL is ``gateway_url``. Everything starts at once; this returns when all
    are ready.
    """
    model = require(MODEL, "run `make train` first")
    actions_port, rasa_port = free_port(), free_port()
    rasa_url = f"http://127.0.0.1:{rasa_port}"
    actions_url = f"http://127.0.0.1:{actions_port}"
    endpoints = work / "endpoints.yml"
    tracker = (
        f"tracker_store:\n  type: {tracker_store_type()}\n"
        f'  dialect: "sqlite"\n  db: "{tracker_db}"\n'
        if tracker_db is not None
        else ""
    )
    endpoints.write_text(
        f'action_endpoint:\n  url: "{actions_url}/webhook"\n'
        + "".join(f"{line}\n" for line in action_endpoint_options())
        + f"nlg:\n  type: {nlg_type()}\n"
        + tracker,
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **(env_overrides or {}),
    }
    (work / "rasa.log").write_bytes(b"")
    starting: list[Starting] = []
    stack = RasaStack(rasa_url=rasa_url, actions_url=actions_url, work=work)
    try:
        actions = spawn_actions(work, actions_port, env, actions_package)
        starting.append(actions)
        stack.actions = actions.proc
        stack.rasa = spawn(
            [str(BIN / "rasa"), "run", "--enable-api", "--port", str(rasa_port)]
            + ["--model", str(model), "--endpoints", str(endpoints)],
            env,
            work / "rasa.log",
            f"{rasa_url}{RASA_READY_PATH}",
        )
        starting.append(stack.rasa)
        if prepare is not None:
            prepare()
        if gateway is not None:
            started = spawn_gateway(
                work,
                {
                    **(env_overrides or {}),
                    "RASA_URL": rasa_url,
                    "ACTIONS_URL": actions_url,
                    **gateway,
                },
            )
            starting.append(started)
            stack.gateway_url = base_url(started)
        wait_all(starting)
        yield stack
    finally:
        # and the action server and Rasa the stack has now (a test may have
        # replaced them)
        stop(
            *(one.proc for one in starting),
            *([stack.actions] if stack.actions is not None else []),
            *([stack.rasa.proc] if stack.rasa is not None else []),
        )


@pytest.fixture(scope="session")
def rasa_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaStack]:
    """Start the trained model's Rasa server and the action server once."""
    with running_rasa_stack(tmp_path_factory.mktemp("rasa")) as stack:
        yield stack
