"""Rasa custom actions and form validators. Business logic lives in `bot/`.

The action server imports this package as it starts, so the texts are read
here, before it answers, not during the first person's turn; and once it has
started, what it keeps for its life is left out of garbage collections
(`bot.gc_freeze`).
"""

from contextlib import suppress

from sanic import Sanic
from sanic.exceptions import SanicException

from bot.gc_freeze import freeze_after_start
from bot.policy.warm import warm_up

RASA_SDK_APP = "rasa_sdk"
"""The name rasa_sdk gives its Sanic app, made before it imports this package."""

warm_up()
with suppress(SanicException):  # raised when not run by the action server
    Sanic.get_app(RASA_SDK_APP).register_listener(
        freeze_after_start, "after_server_start"
    )
