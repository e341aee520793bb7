"""Rasa's debug-only deep copies (`bot.rasa_debug_copies`)."""

from __future__ import annotations

import ast
import inspect
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from bot import rasa_debug_copies


def _copy_uses(module: ModuleType) -> Iterator[tuple[ast.Attribute, list[ast.AST]]]:
    """Each `copy.<name>` in the module's source, with the nodes around it."""
    tree = ast.parse(inspect.getsource(module))

    def walk(node: ast.AST, around: list[ast.AST]) -> Iterator[Any]:
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "copy"
        ):
            yield node, around
        for child in ast.iter_child_nodes(node):
            yield from walk(child, [*around, node])

    yield from walk(tree, [])


def _is_debug_line(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "debug"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "structlogger"
    )


@pytest.mark.parametrize("module", rasa_debug_copies.MODULES, ids=lambda m: m.__name__)
def test_every_copy_in_these_rasa_modules_is_a_debug_line_argument(
    module: ModuleType,
) -> None:
    uses = list(_copy_uses(module))
    assert uses, f"{module.__name__} no longer copies: drop it from MODULES"
    for use, around in uses:
        assert use.attr == "deepcopy", f"{module.__name__}:{use.lineno}"
        assert any(map(_is_debug_line, around)), f"{module.__name__}:{use.lineno}"


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for module in rasa_debug_copies.MODULES:
        monkeypatch.setattr(module, "copy", module.copy)  # restored after
    rasa_debug_copies.install()
    yield


@pytest.mark.parametrize("module", rasa_debug_copies.MODULES, ids=lambda m: m.__name__)
def test_a_value_is_copied_only_when_its_debug_line_is_logged(
    module: ModuleType, installed: None
) -> None:
    log = logging.getLogger(module.__name__)
    value = [{"user": {"intent": "greet"}}, {"prev_action": {"action_name": "x"}}]
    level = log.level
    try:
        log.setLevel(logging.INFO)
        assert module.copy.deepcopy(value) is value
        log.setLevel(logging.DEBUG)
        copied = module.copy.deepcopy(value)
        assert copied == value and copied is not value
        assert copied[0]["user"] is not value[0]["user"]
    finally:
        log.setLevel(level)


def test_the_gateway_channel_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.rasa_channel import GatewayInput

    for module in rasa_debug_copies.MODULES:
        monkeypatch.setattr(module, "copy", module.copy)
    GatewayInput().blueprint(lambda message: None)  # type: ignore[arg-type,return-value]
    for module in rasa_debug_copies.MODULES:
        assert isinstance(module.copy, rasa_debug_copies.DebugOnlyCopy)
