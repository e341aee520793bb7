"""The webhook CLI, run against the local fake Bot API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.channels.telegram_cli import main
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramApi

SECRET = "webhook-Secret_42"


@pytest.fixture
def fake_api() -> Iterator[FakeTelegramApi]:
    with FakeTelegramApi() as api:
        yield api


@pytest.fixture
def env(tmp_path: Path, fake_api: FakeTelegramApi) -> dict[str, str]:
    return {
        "PRAKERJA_ENV": "test",
        "PRAKERJA_VAR_DIR": str(tmp_path),
        "PSEUDONYM_KEY": "test-key",
        "TELEGRAM_TOKEN": DEFAULT_TOKEN,
        "TELEGRAM_SECRET_TOKEN": SECRET,
        "TELEGRAM_API_URL": fake_api.url,
        "PUBLIC_BASE_URL": "https://bot.example.org/",
    }


def test_set_webhook(
    env: dict[str, str], fake_api: FakeTelegramApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["set-webhook"], env) == 0
    assert fake_api.webhook == {
        "url": "https://bot.example.org/telegram/webhook",
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
        "drop_pending_updates": False,
    }
    out = capsys.readouterr()
    assert "https://bot.example.org/telegram/webhook" in out.out
    assert SECRET not in out.out + out.err
    assert DEFAULT_TOKEN not in out.out + out.err


def test_info_and_delete(
    env: dict[str, str], fake_api: FakeTelegramApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["set-webhook"], env) == 0
    assert main(["info"], env) == 0
    assert "url: https://bot.example.org/telegram/webhook" in capsys.readouterr().out
    assert main(["delete-webhook"], env) == 0
    assert fake_api.webhook == {}
    assert fake_api.calls_to("deleteWebhook") == [{"drop_pending_updates": False}]


def test_http_localhost_is_allowed(
    env: dict[str, str], fake_api: FakeTelegramApi
) -> None:
    env["PUBLIC_BASE_URL"] = "http://localhost:8000"
    assert main(["set-webhook"], env) == 0
    assert fake_api.webhook["url"] == "http://localhost:8000/telegram/webhook"


@pytest.mark.parametrize(
    ("name", "value", "hint"),
    [
        ("TELEGRAM_TOKEN", "", "TELEGRAM_TOKEN"),
        ("TELEGRAM_SECRET_TOKEN", "", "TELEGRAM_SECRET_TOKEN"),
        ("TELEGRAM_SECRET_TOKEN", "has spaces!", "TELEGRAM_SECRET_TOKEN"),
        ("PUBLIC_BASE_URL", "", "PUBLIC_BASE_URL"),
        ("PUBLIC_BASE_URL", "http://bot.example.org", "https"),
    ],
)
def test_configuration_errors(
    env: dict[str, str],
    fake_api: FakeTelegramApi,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    hint: str,
) -> None:
    env[name] = value
    assert main(["set-webhook"], env) == 2
    assert hint in capsys.readouterr().err
    assert fake_api.calls == []


def test_rejected_token_does_not_print_it(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    env["TELEGRAM_TOKEN"] = "999:not-the-right-token"
    assert main(["info"], env) == 1
    err = capsys.readouterr().err
    assert "rejected" in err and "not-the-right-token" not in err
