"""`python -m bot`: tuning from the environment, logging, shutdown grace."""

from __future__ import annotations

import logging

import pytest

from bot.__main__ import configure_logging, gateway_options
from bot.gateway.options import GatewayOptions
from bot.settings import SettingsError


def test_concurrency_comes_from_the_environment() -> None:
    options = gateway_options({"GATEWAY_WORKERS": "4", "GATEWAY_SENDERS": " 32 "})
    assert (options.worker_concurrency, options.outbox_concurrency) == (4, 32)


def test_concurrency_defaults_when_unset() -> None:
    options = gateway_options({"GATEWAY_WORKERS": ""})
    defaults = GatewayOptions()
    assert options.worker_concurrency == defaults.worker_concurrency
    assert options.outbox_concurrency == defaults.outbox_concurrency


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_bad_concurrency_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="GATEWAY_SENDERS"):
        gateway_options({"GATEWAY_SENDERS": value})


def test_backlog_bounds_come_from_the_environment() -> None:
    options = gateway_options(
        {
            "GATEWAY_MAX_PENDING": "5000",
            "GATEWAY_MAX_PENDING_PER_CONVERSATION": "4",
            "GATEWAY_NOTICE_WAIT": "45",
        }
    )
    assert (options.max_pending, options.max_pending_per_conversation) == (5000, 4)
    assert (options.notice_wait, options.stale_after) == (45.0, 45.0)
    defaults = gateway_options({})
    assert defaults.max_pending == GatewayOptions().max_pending
    assert defaults.notice_wait == GatewayOptions().notice_wait
    with pytest.raises(SettingsError, match="GATEWAY_NOTICE_WAIT"):
        gateway_options({"GATEWAY_NOTICE_WAIT": "0"})


def test_shutdown_grace_outlasts_a_rasa_turn() -> None:
    defaults = GatewayOptions()
    assert defaults.shutdown_grace >= defaults.rasa_timeout + 5
    with pytest.raises(ValueError, match="shutdown_grace"):
        GatewayOptions(rasa_timeout=30.0, shutdown_grace=10.0)


def test_chatty_client_logs_are_silenced() -> None:
    for name in ("httpx", "twilio.http_client"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    configure_logging()
    assert logging.getLogger("httpx").level == logging.WARNING
    assert logging.getLogger("twilio.http_client").level == logging.WARNING
