"""`make run` binds every service it starts to 127.0.0.1 (issue 12, finding 7):
the action server has no authentication and trusts the sender id it is given,
and Rasa's REST channel takes any sender, so neither may listen on all
interfaces."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import rasa_sdk.endpoint

from bot.launcher import LOOPBACK, Service, Supervisor, services


def by_name() -> dict[str, Service]:
    return {s.name: s for s in services(Path("model.tar.gz"), Path("/venv/bin"))}


def test_the_action_server_is_told_to_listen_on_loopback() -> None:
    actions = by_name()["actions"]
    assert actions.env["SANIC_HOST"] == LOOPBACK
    assert LOOPBACK == "127.0.0.1"


def test_rasa_listens_on_loopback() -> None:
    command = by_name()["rasa"].command
    assert command[command.index("--interface") + 1] == LOOPBACK


def test_rasa_sdk_takes_its_host_from_sanic_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """rasa-sdk 3.6 has no --host option; its `run` reads SANIC_HOST."""
    bound: list[Any] = []

    class FakeApp:
        def run(self, host: str, port: int, **kwargs: Any) -> None:
            bound.append((host, port))

    monkeypatch.setattr(rasa_sdk.endpoint, "create_app", lambda *a, **k: FakeApp())
    monkeypatch.setenv("SANIC_HOST", LOOPBACK)
    rasa_sdk.endpoint.run("actions", port=5999)
    assert bound == [(LOOPBACK, 5999)]


def test_a_service_is_started_with_its_environment() -> None:
    check = "import os, sys; sys.exit(0 if os.environ['SANIC_HOST'] == 'x' else 3)"
    service = Service("probe", [sys.executable, "-c", check], "", {"SANIC_HOST": "x"})
    supervisor = Supervisor()
    supervisor.start(service)
    assert supervisor.children["probe"].wait(timeout=30) == 0


def test_the_action_server_waits_longer_than_sanics_default_for_a_request() -> None:
    """Rasa opens a connection per action call; a busy Rasa may write the request
    more than 5 s (Sanic's default) after connecting."""
    assert int(by_name()["actions"].env["SANIC_KEEP_ALIVE_TIMEOUT"]) >= 30
