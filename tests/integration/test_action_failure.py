"""The action server killed (SIGKILL) while Rasa waits for an action of a turn.

Rasa answers such a turn normally, with none of the failed action's replies. The
gateway must not mark the message done: it retries the turn once the action
server is back, and the person gets the one answer, not silence.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.gateway.wait_notice import is_notice
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramApi
from tests.integration.blocking_actions import GATE_ENV
from tests.integration.conftest import (
    RasaStack,
    running_rasa_stack,
    start_actions,
)
from tests.integration.test_e2e_channels import (
    CHAT_ID,
    SECRET,
    post_update,
    text_update,
    wait_for,
)

STATUS_QUESTION = "status pendaftaran saya sampai mana"
"""Answered by a custom action, the gated one (programme questions are not)."""
QUIET = 4.0
"""Seconds the person must hear nothing while the action server is down."""
RECOVERY_WAIT = 100.0
"""The gateway waits for the action server with a backoff capped at 60 s."""


def _answers(api: FakeTelegramApi) -> list[dict[str, Any]]:
    """The messages sent, without the gateway's wait notice (`GATEWAY_NOTICE_WAIT`
    may pass while the action server restarts on a loaded machine)."""
    return [a for a in api.calls_to("sendMessage") if not is_notice(a["text"])]


def shared_settings(work: Path) -> dict[str, str]:
    """What the gateway and the action server share: the database the status
    action finds the caller in, the pseudonym key, the gate."""
    return {
        "PRAKERJA_ENV": "test",
        "PRAKERJA_VAR_DIR": str(work),
        "DATABASE_URL": f"sqlite:///{work}/gateway.db",
        "PSEUDONYM_KEY": "action-failure-test-key",
        "SMTP_URL": "",
        "NIK_VERIFIER_URL": "",
        GATE_ENV: str(work / "gate"),
    }


@pytest.fixture()
def gated_stack(tmp_path: Path) -> Iterator[tuple[RasaStack, Path, FakeTelegramApi]]:
    """Rasa, an action server whose status action waits at a gate, and the gateway
    with a fake Telegram Bot API (all three start at once)."""
    gate = tmp_path / "gate"
    gate.mkdir()
    with (
        FakeTelegramApi() as api,
        running_rasa_stack(
            tmp_path,
            shared_settings(tmp_path),
            actions_package="tests.integration.blocking_actions",
            gateway={
                "TELEGRAM_TOKEN": DEFAULT_TOKEN,
                "TELEGRAM_SECRET_TOKEN": SECRET,
                "TELEGRAM_API_URL": api.url,
            },
        ) as stack,
    ):
        yield stack, gate, api


def test_killing_the_action_server_mid_turn_retries_the_turn(
    gated_stack: tuple[RasaStack, Path, FakeTelegramApi], tmp_path: Path
) -> None:
    stack, gate, api = gated_stack
    assert stack.actions is not None and stack.gateway_url is not None
    base = stack.gateway_url
    assert post_update(base, text_update(1, STATUS_QUESTION)).status_code == 200
    wait_for(lambda: (gate / "entered").exists(), "the action to start")
    os.kill(stack.actions.pid, signal.SIGKILL)
    stack.actions.wait(timeout=10)

    time.sleep(QUIET)  # Rasa has answered the turn by now, without the status
    assert api.calls_to("sendMessage") == [], "half a turn was sent"

    (gate / "release").touch()
    port = urllib.parse.urlsplit(stack.actions_url).port
    assert port is not None
    stack.actions = start_actions(  # the stack stops it at exit
        tmp_path,
        port,
        {**os.environ, **shared_settings(tmp_path)},
        "tests.integration.blocking_actions",
    )
    deadline = time.monotonic() + RECOVERY_WAIT
    while not _answers(api) and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(1.5)  # nothing else follows
    answers = _answers(api)
    notices = [a for a in api.calls_to("sendMessage") if is_notice(a["text"])]
    assert len(notices) <= 1, "at most one wait notice (a slow restart)"
    health = httpx.get(f"{base}/healthz", timeout=10).json()
    assert len(answers) == 1, [a["text"] for a in answers]
    assert str(answers[0]["chat_id"]) == str(CHAT_ID)
    assert "HUBUNGKAN" in answers[0]["text"]  # an unlinked Telegram chat
    assert health["incomplete_turns"] >= 1, health
    assert health["failed_messages"] == 0, health
