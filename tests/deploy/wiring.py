"""What the deployed processes see: their environment, their settings, Rasa's
endpoints, and the variables the code reads."""

from __future__ import annotations

import base64
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import pytest

import bot.__main__ as gateway_main
from bot import settings as settings_module
from bot.policy import programme
from bot.secret_strength import secret_problem
from bot.settings import Settings, load_settings
from tests.deploy.manifests import (
    Manifest,
    component,
    config_data,
    container_env,
    load_manifests,
    of_kind,
    pod_spec,
)

ENDPOINTS_CONFIGMAP = "prakerja-rasa-endpoints"
ENDPOINTS_KEY = "endpoints.yml"


STRONG_SECRETS = ("PSEUDONYM_KEY", "TELEGRAM_SECRET_TOKEN")
"""Keys that production refuses unless they look like 32+ random bytes."""


def fake_secret(key: str, optional: bool) -> str:
    """A value a filled Secret could hold for `key`: random-looking (base64url of
    a hash of the key) for the keys production checks for strength."""
    if key in STRONG_SECRETS:
        digest = hashlib.sha256(key.encode()).digest()
        value = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        assert secret_problem(key, value, telegram=True) is None
        return value
    return f"from-secret-{key.lower()}"


def without_optional(key: str, optional: bool) -> str | None:
    """A Secret that has only the keys the containers require."""
    return None if optional else fake_secret(key, optional)


def workload(name: str) -> Manifest:
    """The Deployment or Job whose pods have component `name`."""
    manifests = load_manifests()
    found = [
        w
        for w in of_kind(manifests, "Deployment") + of_kind(manifests, "Job")
        if component(w) == name
    ]
    assert len(found) == 1, f"one workload with component {name}"
    return found[0]


def env_of(name: str, secret: Any = fake_secret) -> dict[str, str]:
    """The environment of the (only) container of the workload `name`."""
    (container,) = pod_spec(workload(name))["containers"]
    return container_env(load_manifests(), container, secret)


def settings_of(name: str, secret: Any = fake_secret) -> Settings:
    """bot.settings as the container of `name` loads them (SettingsError if the
    production checks refuse them)."""
    return load_settings(env_of(name, secret))


def endpoints_yml() -> str:
    """Rasa's endpoints file as deployed."""
    return config_data(load_manifests(), ENDPOINTS_CONFIGMAP)[ENDPOINTS_KEY]


def read_rasa_endpoints(env: dict[str, str]) -> Any:
    """The deployed endpoints file read by Rasa's own reader, with `env` as the
    environment (Rasa substitutes ${VAR} from os.environ)."""
    from rasa.core.utils import read_endpoints_from_path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ENDPOINTS_KEY
        path.write_text(endpoints_yml(), encoding="utf-8")
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            return read_endpoints_from_path(str(path))


def rasa_action_endpoint() -> str:
    """The action server's URL in the deployed endpoints file."""
    return str(read_rasa_endpoints(env_of("rasa")).action.url)


def code_variables() -> set[str]:
    """Every environment variable the gateway, actions and seed code read: the
    names bot.settings asks `_get` for, the gateway's tuning (bot.__main__) and
    the policy version (bot.policy.programme)."""
    asked: set[str] = set()
    real_get = settings_module._get
    real_count = gateway_main._count

    def get(env: dict[str, str], name: str) -> str | None:
        asked.add(name)
        return real_get(env, name)

    def count(env: Any, name: str, default: int) -> int:
        asked.add(name)
        return real_count(env, name, default)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings_module, "_get", get)
        patch.setattr(gateway_main, "_count", count)
        load_settings({"PRAKERJA_ENV": "test", "PSEUDONYM_KEY": "k" * 64})
        gateway_main.gateway_options({})
    return asked | {programme.ENV_VAR}


def sanic_settings(names: set[str]) -> set[str]:
    """Of `names`, those Sanic (the action server's HTTP server) reads: a
    `SANIC_` prefix before one of its config keys (e.g. SANIC_KEEP_ALIVE_TIMEOUT
    sets KEEP_ALIVE_TIMEOUT)."""
    from sanic.config import Config

    config = Config()
    return {n for n in names if n.startswith("SANIC_") and n[6:] in config}

