"""The project's actions, with `action_registration_status` held at a gate the
test controls.

Only the integration test of a turn interrupted mid-action loads this package
(`rasa run actions --actions tests.integration.blocking_actions`). The status
action touches `<BLOCKING_ACTIONS_DIR>/entered`, then waits until `release`
exists there, so the test can kill the action server while Rasa waits for it.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
from pathlib import Path
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions
from actions.registration import ActionRegistrationStatus

for _module in pkgutil.iter_modules(actions.__path__):  # every other action
    importlib.import_module(f"actions.{_module.name}")

GATE_ENV = "BLOCKING_ACTIONS_DIR"
HOLD_SECONDS = 120.0


class GatedRegistrationStatus(ActionRegistrationStatus):
    """The status answer, run only once the test releases the gate."""

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """Signal entry, wait for the release (bounded), then answer as usual."""
        gate = Path(os.environ[GATE_ENV])
        (gate / "entered").touch()
        deadline = asyncio.get_running_loop().time() + HOLD_SECONDS
        while not (gate / "release").exists():
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        return await super().run(dispatcher, tracker, domain)
