"""Run the real processes: Rasa, the action server and the gateway, on free ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

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


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not stop."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class RasaStack:
    """Rasa and the action server, running for real."""

    rasa_url: str
    actions_url: str
    actions: subprocess.Popen[bytes] | None = None
    """The action server's process (a test may kill it)."""


def start_actions(
    work: Path, port: int, env: Mapping[str, str], package: str = "actions"
) -> subprocess.Popen[bytes]:
    """Start the action server with `package` on `port`; return once it is ready."""
    log = work / "actions.log"
    actions = subprocess.Popen(
        [str(BIN / "rasa"), "run", "actions", "--port", str(port)]
        + ["--actions", package],
        cwd=ROOT,
        env=dict(env),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/health", actions, log)
    except BaseException:
        stop(actions)
        raise
    return actions


@contextmanager
def running_rasa_stack(
    work: Path,
    env_overrides: Mapping[str, str] | None = None,
    tracker_db: Path | None = None,
    actions_package: str = "actions",
) -> Iterator[RasaStack]:
    """Run the trained model's Rasa server and the action server until exit.

    ``env_overrides`` go into both processes' environment (e.g. the gateway's
    DATABASE_URL, so the actions see the same registry); logs go to ``work``.
    ``tracker_db``: keep Rasa's tracker in that SQLite file (SQLTrackerStore, as
    endpoints.yml does) instead of in memory. ``actions_package``: the package the
    action server loads.
    """
    model = require(MODEL, "run `make train` first")
    actions_port, rasa_port = free_port(), free_port()
    endpoints = work / "endpoints.yml"
    tracker = (
        f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{tracker_db}"\n'
        if tracker_db is not None
        else ""
    )
    endpoints.write_text(
        f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n'
        + tracker,
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **(env_overrides or {}),
    }
    procs = []
    try:
        actions = start_actions(work, actions_port, env, actions_package)
        procs.append(actions)
        log = work / "rasa.log"
        rasa = subprocess.Popen(
            [
                str(BIN / "rasa"),
                "run",
                "--enable-api",
                "--port",
                str(rasa_port),
                "--model",
                str(model),
                "--endpoints",
                str(endpoints),
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        procs.append(rasa)
        wait_until_ready(f"http://127.0.0.1:{rasa_port}/status", rasa, log)
        yield RasaStack(
            rasa_url=f"http://127.0.0.1:{rasa_port}",
            actions_url=f"http://127.0.0.1:{actions_port}",
            actions=actions,
        )
    finally:
        for proc in reversed(procs):
            stop(proc)


@pytest.fixture(scope="session")
def rasa_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaStack]:
    """Start the trained model's Rasa server and the action server once."""
    with running_rasa_stack(tmp_path_factory.mktemp("rasa")) as stack:
        yield stack


def start_gateway(
    work: Path, env_overrides: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `python -m bot` with the given settings; return it and its base URL."""
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
    log = work / "gateway.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_until_ready(f"{base}/healthz", proc, log)
    return proc, base
