"""kill -9 of a gateway process in the middle of an SMS send: exactly one SMS.

The gateway runs as its own OS process (uvicorn, short leases) with the real
twilio client against the local fake REST API, which accepts the message and
then holds the answer back. The process is killed with SIGKILL while it waits;
a second process on the same database finds the row's send evidence, looks the
message up through Twilio's API and adopts its sid instead of sending it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from twilio.request_validator import RequestValidator

from tests.fakes.rasa import FakeRasa
from tests.fakes.twilio_api import FakeTwilioApi
from tests.gateway.conftest import Db, wait_until
from tests.gateway.fake_actions import FakeActionServer
from tests.integration.conftest import free_port, stop, wait_until_ready

TOKEN = "test-twilio-auth-token"
PERSON = "+6281234567890"
GATEWAY = """
import sys
import uvicorn
from bot.gateway.app import create_app
from bot.gateway.options import GatewayOptions
from bot.settings import load_settings

options = GatewayOptions(
    poll_interval=0.1, lease_seconds=2.0, rasa_timeout=5.0, shutdown_grace=10.0,
    send_backoff_base=0.2, send_backoff_cap=1.0,
)
app = create_app(load_settings(), options=options)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@contextmanager
def gateway(
    env: dict[str, str], log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A gateway process on a free port; stopped (if still alive) at exit."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
            [sys.executable, "-c", GATEWAY, str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{base}/healthz", proc, log)
        yield base, proc
    finally:
        stop(proc)


def _found_counted(base: str) -> dict[str, int] | None:
    """The gateway's unknown-outcome counters once one send is counted found."""
    counters: dict[str, int] = httpx.get(f"{base}/healthz", timeout=5).json()[
        "unknown_sends"
    ]
    return counters if counters["found"] else None


def test_a_gateway_killed_mid_send_sends_the_sms_once(tmp_path: Path) -> None:
    with (
        FakeRasa() as rasa,
        FakeActionServer() as actions,
        FakeTwilioApi(auth_token=TOKEN) as twilio,
    ):
        public = "https://gateway.example.org"
        env = {
            **os.environ,
            "PRAKERJA_ENV": "test",
            "PRAKERJA_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db",
            "TRACKER_STORE_URL": f"sqlite:///{tmp_path}/tracker.db",
            "RASA_URL": rasa.url,
            "ACTIONS_URL": actions.url,
            "PSEUDONYM_KEY": "test-pseudonym-key-not-secret-0123456789",
            "PUBLIC_BASE_URL": public,
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_FROM_NUMBER": "+15550001111",
            "TWILIO_API_URL": twilio.url,
        }
        twilio.stall_next(1, seconds=60.0)  # accepted, answer held back
        params = {
            "MessageSid": "SM" + "5" * 32,
            "AccountSid": twilio.account_sid,
            "From": PERSON,
            "To": "+15550001111",
            "Body": "halo",
            "NumMedia": "0",
        }
        signature = RequestValidator(TOKEN).compute_signature(
            public + "/sms/inbound", params
        )
        log = tmp_path / "gateway.log"
        with gateway(env, log) as (base, first):
            response = httpx.post(
                f"{base}/sms/inbound",
                data=params,
                headers={"X-Twilio-Signature": signature},
                timeout=10,
            )
            assert response.status_code == 200
            wait_until(lambda: twilio.messages, what="Twilio to accept the SMS")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        db = Db(env["DATABASE_URL"])
        try:
            [row] = db.outbox()
            assert row.status == "pending" and row.send_started_at is not None
            with gateway(env, log) as (base, _):
                wait_until(
                    lambda: db.outbox()[0].status != "pending",
                    timeout=30,
                    what="the second process to settle the reply",
                )
                # the outcome is counted just after the commit the test saw
                counters = wait_until(
                    lambda: _found_counted(base), what="the outcome to be counted"
                )
            [row] = db.outbox()
        finally:
            db.close()
        [message] = twilio.messages
        assert len(twilio.sent) == 1, "the SMS went out twice"
        assert (row.status, row.provider_message_id) == ("sent", message["sid"])
        assert row.reconciled == "found"
        assert counters["found"] == 1
