"""The account command line: `make supervisor NAME=name` creates the first
supervisor; agents, passwords and blocking work the same way."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.console import audit
from bot.console.admin import CommandError, main, read_password
from bot.console.auth import authenticate, client_target
from bot.console.models import Agent
from bot.db import make_engine, make_sessionmaker
from tests.console.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite database in the environment the command reads."""
    url = f"sqlite:///{tmp_path}/admin.db"
    monkeypatch.setenv("PRAKERJA_ENV", "test")
    monkeypatch.setenv("PRAKERJA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CONSOLE_PASSWORD", PASSWORD)
    return url


def agents(url: str) -> list[Agent]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return list(session.execute(select(Agent).order_by(Agent.id)).scalars())
    finally:
        engine.dispose()


def test_create_supervisor_makes_a_supervisor_who_can_log_in(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create-supervisor", "Sari", "--display-name", "Sari Dewi"]) == 0
    assert "Supervisor 'sari' dibuat" in capsys.readouterr().out
    [row] = agents(database_url)
    assert (row.username, row.display_name, row.role) == (
        "sari",
        "Sari Dewi",
        "supervisor",
    )
    assert row.password_hash.startswith("$argon2id$")
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        client = client_target(b"k", "127.0.0.1")
        assert authenticate(session, "sari", PASSWORD, client).ok
    engine.dispose()


def test_a_taken_username_or_a_short_password_is_refused(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["create-agent", "andi"]) == 0
    assert main(["create-supervisor", "andi"]) == 1
    assert "sudah dipakai" in capsys.readouterr().err
    monkeypatch.setenv("CONSOLE_PASSWORD", "pendek")
    assert main(["create-agent", "budi"]) == 1
    assert "minimal" in capsys.readouterr().err
    assert [row.username for row in agents(database_url)] == ["andi"]


def test_set_password_deactivate_and_list(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["create-agent", "andi"]) == 0
    monkeypatch.setenv("CONSOLE_PASSWORD", "kata-sandi-baru-sekali")
    assert main(["set-password", "andi"]) == 0
    assert main(["deactivate", "andi"]) == 0
    assert main(["set-password", "tidak-ada"]) == 1
    capsys.readouterr()
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "andi" in listing and "diblokir" in listing
    [row] = agents(database_url)
    assert not row.active


def test_the_password_is_asked_twice_without_the_environment() -> None:
    typed = iter([PASSWORD, PASSWORD])
    assert read_password({}, lambda prompt: next(typed)) == PASSWORD
    different = iter([PASSWORD, PASSWORD + "x"])
    with pytest.raises(CommandError):
        read_password({}, lambda prompt: next(different))
    assert read_password({"CONSOLE_PASSWORD": PASSWORD}, lambda p: "unused") == PASSWORD


def test_make_supervisor_runs_the_command() -> None:
    result = subprocess.run(
        ["make", "-n", "supervisor", "NAME=sari"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert 'bot.console.admin create-supervisor "sari"' in result.stdout


def test_make_supervisor_needs_a_name() -> None:
    result = subprocess.run(
        ["make", "-s", "supervisor", "NAME="],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "NAME=name" in result.stdout


@pytest.mark.parametrize("weak", ["aaaaaaaaaa", "password12"])
def test_the_command_line_refuses_a_weak_password(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    weak: str,
) -> None:
    assert main(["create-agent", "andi"]) == 0
    monkeypatch.setenv("CONSOLE_PASSWORD", weak)
    assert main(["create-agent", "budi"]) == 1
    assert "mudah ditebak" in capsys.readouterr().err
    assert main(["set-password", "andi"]) == 1
    assert "mudah ditebak" in capsys.readouterr().err
    typed = iter([weak, weak])
    with pytest.raises(ValueError, match="mudah ditebak"):
        read_password({}, lambda prompt: next(typed))
    [row] = agents(database_url)
    assert row.username == "andi"
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        client = client_target(b"k", "127.0.0.1")
        assert authenticate(session, "andi", PASSWORD, client).ok
    engine.dispose()


def test_the_command_line_audits_who_changed_which_account(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "Operator Satu")
    assert main(["create-agent", "andi"]) == 0
    assert main(["set-password", "andi"]) == 0
    assert main(["deactivate", "andi"]) == 0
    assert main(["activate", "andi"]) == 0
    [andi] = agents(database_url)
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        events = [(e.action, e.target) for e in audit.latest(session)][::-1]
    engine.dispose()
    by = f"agent:{andi.id} by:cli:operator.satu"
    assert events == [
        ("agent_created", by),
        ("password_set", by),
        ("agent_deactivated", by),
        ("agent_activated", by),
    ]
