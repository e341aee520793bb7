"""Rasa sends its domain only to the actions that read it: every endpoints file
turns on Rasa's selective domain, and every validator that reads the domain
(rasa_sdk's form validators take each form's slots from it) asks for it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator

import pytest
import yaml
from rasa.shared.core.domain import Domain
from rasa_sdk import Action
from rasa_sdk.forms import ValidationAction

import actions
from tests.conftest import ROOT
from tests.deploy.wiring import endpoints_yml

ENDPOINTS = {
    "endpoints.yml": lambda: (ROOT / "endpoints.yml").read_text(encoding="utf-8"),
    "endpoints-scaled.yml": lambda: (ROOT / "endpoints-scaled.yml").read_text(
        encoding="utf-8"
    ),
    "deploy/k8s (Rasa's endpoints)": endpoints_yml,
}


def _subclasses(cls: type) -> Iterator[type]:
    sub: type
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _our_actions() -> dict[str, type[Action]]:
    for module in pkgutil.iter_modules(actions.__path__):
        importlib.import_module(f"actions.{module.name}")
    found = {}
    for cls in _subclasses(Action):
        if cls.__module__.startswith("actions.") and not inspect.isabstract(cls):
            found[cls().name()] = cls
    return found


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_every_endpoints_file_sends_the_domain_only_where_asked(name: str) -> None:
    config = yaml.safe_load(ENDPOINTS[name]())
    assert config["action_endpoint"].get("enable_selective_domain") is True


def test_the_validators_and_only_they_ask_for_the_domain() -> None:
    ours = _our_actions()
    validators = {n for n, cls in ours.items() if issubclass(cls, ValidationAction)}
    assert {"validate_registration_form", "validate_eligibility_form"} <= validators
    domain = Domain.load(str(ROOT / "domain.yml"))
    asking = {n for n in ours if domain.does_custom_action_explicitly_need_domain(n)}
    assert asking == validators
