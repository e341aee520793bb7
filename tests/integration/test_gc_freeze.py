"""Each server leaves what it keeps for its life out of garbage collections
(`bot.gc_freeze`): Rasa and the action server once Sanic has started (the
model and the actions loaded), the gateway once its loops run."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.conftest import RasaStack, start_gateway, stop

FROZEN = re.compile(r"(\d+) objects of the started process left out of collections")
AT_LEAST = 10_000
"""Fewer frozen objects than this would mean the freeze ran before the
process had loaded what it serves with."""


def frozen_counts(log: Path) -> list[int]:
    """The counts each freeze of the process logged."""
    return [int(found) for found in FROZEN.findall(log.read_text(errors="replace"))]


def test_rasa_the_action_server_and_the_gateway_freeze_once_started(
    rasa_stack: RasaStack, tmp_path: Path
) -> None:
    assert rasa_stack.work is not None
    proc, _base = start_gateway(
        tmp_path,
        {"RASA_URL": rasa_stack.rasa_url, "ACTIONS_URL": rasa_stack.actions_url},
    )
    stop(proc)
    for log in (
        rasa_stack.work / "rasa.log",
        rasa_stack.work / "actions.log",
        tmp_path / "gateway.log",
    ):
        counts = frozen_counts(log)
        assert len(counts) == 1, f"{log.name}: {counts}"
        assert counts[0] >= AT_LEAST, f"{log.name}: {counts}"
