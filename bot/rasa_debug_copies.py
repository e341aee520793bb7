"""Inside Rasa: deep copies made for debug log lines only when they are logged.

Rasa 3.6 passes deep copies to its structured debug log lines: the events of
every action the processor runs, the parse data of every message, the states
of every MemoizationPolicy prediction (about 0.11 ms for six states), the
latest message at every form turn, and more. The arguments are built before
structlog looks at the level, so the copies are made on every turn and thrown
away when debug logging is off, as it is in production.

In `rasa.core.processor`, `rasa.core.actions.forms`,
`rasa.core.policies.memoization` and `rasa.core.policies.rule_policy` every
`copy.deepcopy` is such an argument (`tests/unit/test_rasa_debug_copies.py`
reads their source to make sure). `install` gives each of these modules a
`copy` whose `deepcopy` copies only when that module's logger is on for debug
(structlog's `filter_by_level`, which Rasa configures, asks the same logger),
and otherwise hands back the value, which the dropped log line never reads.
"""

from __future__ import annotations

import copy
import logging
from types import ModuleType
from typing import TypeVar

import rasa.core.actions.forms
import rasa.core.policies.memoization
import rasa.core.policies.rule_policy
import rasa.core.processor

T = TypeVar("T")

MODULES: tuple[ModuleType, ...] = (
    rasa.core.processor,
    rasa.core.actions.forms,
    rasa.core.policies.memoization,
    rasa.core.policies.rule_policy,
)
"""Rasa's modules whose only deep copies are debug log arguments."""


class DebugOnlyCopy:
    """What these modules see as `copy`: `deepcopy` for a debug line only."""

    def __init__(self, logger_name: str) -> None:
        self._logger = logging.getLogger(logger_name)

    def deepcopy(self, value: T) -> T:
        """A deep copy when the debug line will be logged, else `value`."""
        if self._logger.isEnabledFor(logging.DEBUG):
            return copy.deepcopy(value)
        return value


def install() -> None:
    """Copy for Rasa's debug lines only when they are logged (idempotent)."""
    for module in MODULES:
        module.copy = DebugOnlyCopy(module.__name__)  # type: ignore[attr-defined]
