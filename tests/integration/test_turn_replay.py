"""A message Rasa gets twice with one idempotency key: replayed, not run again.

Rasa (the trained model, SQL tracker store), the action server and the gateway run
for real on one seeded SQLite database. The gateway walks a person through the
registration up to the e-mail code, as a person would by SMS; then the code turn
is posted straight to Rasa's gateway channel twice with one key, as a gateway
process does when another one died after Rasa finished the turn. Run again, that
turn would read the code as the NIK the form now asks for.
"""

from __future__ import annotations

import os
import signal
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.db import make_engine, make_sessionmaker
from bot.messages.models import Conversation
from tests.integration.conftest import (
    RasaStack,
    start_actions,
)
from tests.integration.test_registration_sms import (
    EMAIL,
    NAME,
    PHONE,
    RegistrationSite,
    SmsTranscript,
    emailed_code,
    running_sms_site,
    transcript_on_failure,
)

WEBHOOK = "/webhooks/gateway/webhook"
STATUS_QUESTION = "status pendaftaran saya sampai mana"
"""Answered by a custom action (programme questions are answered in Rasa)."""
TURN_TIMEOUT = 60.0


@dataclass
class ReplaySite:
    """The running processes; `actions` is replaced when a test revives it."""

    stack: RasaStack
    registration: RegistrationSite
    actions_env: dict[str, str]


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[ReplaySite]:
    """Seeded database, Rasa + action server and gateway sharing its settings."""
    database_url = f"sqlite:///{tmp_path}/gateway.db"
    outbox = tmp_path / "email-outbox"
    shared = {
        "PRAKERJA_ENV": "test",
        "PRAKERJA_POLICY": "2020",
        "PRAKERJA_VAR_DIR": str(tmp_path),
        "DATABASE_URL": database_url,
        "EMAIL_OUTBOX_DIR": str(outbox),
        "PSEUDONYM_KEY": "turn-replay-test-key",
        "SMTP_URL": "",
        "NIK_VERIFIER_URL": "",
    }
    with running_sms_site(tmp_path, shared) as (registration, stack):
        env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", **shared}
        yield ReplaySite(stack, registration, env)


def post_turn(site: ReplaySite, sender: str, text: str, key: str) -> dict[str, Any]:
    """One message to Rasa's gateway channel, as the gateway sends it."""
    body = {
        "sender": sender,
        "message": text,
        "metadata": {"channel": "sms", "simulated": False, "idempotency_key": key},
    }
    response = httpx.post(
        site.stack.rasa_url + WEBHOOK, json=body, timeout=TURN_TIMEOUT
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert isinstance(answer, dict), answer
    return answer


def keyed_turns(site: ReplaySite, sender: str, key: str) -> list[dict[str, Any]]:
    """The `user` events of the sender's tracker that carry `key`."""
    response = httpx.get(
        f"{site.stack.rasa_url}/conversations/{sender}/tracker", timeout=30
    )
    assert response.status_code == 200, response.text
    return [
        event
        for event in response.json()["events"]
        if event.get("event") == "user"
        and (event.get("metadata") or {}).get("idempotency_key") == key
    ]


def texts(answer: dict[str, Any]) -> str:
    """The replies' texts, one block."""
    return "\n".join(str(reply.get("text", "")) for reply in answer["replies"])


def pseudonym_of(site: ReplaySite, address: str) -> str:
    """The sender id Rasa knows the SMS conversation with `address` by."""
    engine = make_engine(site.registration.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return str(
                session.execute(
                    select(Conversation.pseudonym).where(
                        Conversation.channel == "sms", Conversation.address == address
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_the_code_turn_sent_twice_is_answered_once(site: ReplaySite) -> None:
    transcript = SmsTranscript(site.registration)
    with transcript_on_failure(transcript):
        transcript.say(PHONE, "halo", "Prakerja", "the greeting")
        transcript.say(PHONE, "daftar", "setuju", "the consent question")
        transcript.say(PHONE, "setuju", "nama lengkap", "the name question")
        transcript.say(PHONE, NAME, "email", "the e-mail question")
        transcript.say(PHONE, EMAIL, "Kode 6 angka", "the code question")
    code = emailed_code(site.registration.outbox, EMAIL)
    sender = pseudonym_of(site, PHONE)

    first = post_turn(site, sender, code, "replay-code-1")
    again = post_turn(site, sender, code, "replay-code-1")

    assert first["complete"] is True, first
    assert "terverifikasi" in texts(first) and "NIK" in texts(first), first
    assert again["replies"] == first["replies"], (texts(first), texts(again))
    assert (first["replayed"], again["replayed"]) == (False, True)
    turns = keyed_turns(site, sender, "replay-code-1")
    assert len(turns) == 1, turns
    assert turns[0]["metadata"].get("turn_complete") is True


def test_a_failed_turn_runs_whole_when_repeated_after_the_actions_return(
    site: ReplaySite,
) -> None:
    stack = site.stack
    assert stack.actions is not None
    sender = "replay-" + uuid.uuid4().hex
    os.kill(stack.actions.pid, signal.SIGKILL)
    stack.actions.wait(timeout=10)

    failed = post_turn(site, sender, STATUS_QUESTION, "replay-status-1")
    assert failed["complete"] is False, failed
    assert "action_registration_status" in failed["failed_actions"], failed

    port = urllib.parse.urlsplit(stack.actions_url).port
    assert port is not None
    stack.actions = start_actions(
        site.registration.work, port, site.actions_env, "actions"
    )
    retried = post_turn(site, sender, STATUS_QUESTION, "replay-status-1")
    again = post_turn(site, sender, STATUS_QUESTION, "replay-status-1")

    assert (retried["complete"], retried["replayed"]) == (True, False), retried
    assert "Telegram atau SMS" in texts(retried), retried  # no gateway caller
    assert (again["replies"], again["replayed"]) == (retried["replies"], True)
    turns = keyed_turns(site, sender, "replay-status-1")
    # the failed attempt was not saved: the repeat ran on the tracker before it
    assert [turn["metadata"].get("turn_complete") for turn in turns] == [True]
