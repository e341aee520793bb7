"""The deployed processes get the settings the code reads, every setting that
production requires, and Rasa gets an endpoints file it can load."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import yaml

from bot.launcher import RASA_ENV
from bot.policy.programme import ENV_VAR as POLICY_VARIABLE
from bot.secret_strength import secret_problem
from bot.settings import SettingsError
from tests.deploy.manifests import (
    SECRET_TEMPLATE,
    endpoint_variables,
    load_manifests,
    named,
    pod_spec,
    secret_refs,
)
from tests.deploy.wiring import (
    code_variables,
    endpoints_yml,
    env_of,
    fake_secret,
    read_rasa_endpoints,
    sanic_settings,
    settings_of,
    without_optional,
    workload,
)

APP_PROCESSES = ["gateway", "actions", "migrate"]
"""The workloads that run our code (bot.settings); Rasa runs Rasa's."""


def test_code_variables_are_found() -> None:
    found = code_variables()
    assert {"DATABASE_URL", "PSEUDONYM_KEY", "GATEWAY_WORKERS", "PRAKERJA_POLICY"} <= (
        found
    )


@pytest.mark.parametrize("name", APP_PROCESSES)
def test_every_variable_set_is_one_the_code_reads(name: str) -> None:
    names = set(env_of(name))
    unknown = names - code_variables() - sanic_settings(names)
    assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize("name", APP_PROCESSES)
@pytest.mark.parametrize("secret", [fake_secret, without_optional], ids=["all", "req"])
def test_production_settings_are_complete(name: str, secret: object) -> None:
    try:
        settings = settings_of(name, secret)
    except SettingsError as exc:
        pytest.fail(f"{name} would refuse to start: {exc}")
    assert not settings.is_development, "no simulator, no local key in production"


def test_gateway_listens_where_it_is_probed() -> None:
    settings = settings_of("gateway")
    assert settings.gateway_host == "0.0.0.0"  # noqa: S104 (inside its pod)
    (container,) = pod_spec(workload("gateway"))["containers"]
    ports = [p["containerPort"] for p in container["ports"]]
    assert ports == [settings.gateway_port]


def test_rasa_gets_exactly_the_variables_its_endpoints_use() -> None:
    """Those of endpoints.yml, Rasa's own settings as `make run-scaled` and
    the soak give them (`bot.launcher.RASA_ENV`: Rasa's lock store reads
    TICKET_LOCK_LIFETIME), and the policy version of the answers it renders
    (bot.rasa_nlg)."""
    expected = endpoint_variables(endpoints_yml()) | set(RASA_ENV) | {POLICY_VARIABLE}
    assert set(env_of("rasa")) == expected
    manifest = pod_spec(named(load_manifests(), "Deployment", "prakerja-rasa"))
    values = {
        item["name"]: item.get("value")
        for container in manifest["containers"]
        for item in container.get("env", [])
    }
    assert {name: values[name] for name in RASA_ENV} == RASA_ENV


def test_rasa_and_the_action_server_answer_from_one_policy_version() -> None:
    rasa, actions = env_of("rasa")[POLICY_VARIABLE], env_of("actions")[POLICY_VARIABLE]
    assert rasa == actions


def test_rasa_endpoints_are_shared_stores_for_several_pods() -> None:
    endpoints = read_rasa_endpoints(env_of("rasa"))
    tracker, lock = endpoints.tracker_store, endpoints.lock_store
    assert tracker.type == "bot.rasa_tracker_store.TurnSQLTrackerStore"
    assert tracker.kwargs["dialect"] == "postgresql"
    assert lock.type == "redis", "Rasa's RedisLockStore: one turn per conversation"
    manifests = load_manifests()
    for host in (tracker.url, lock.url):
        service = named(manifests, "Service", host)
        assert service.doc["spec"]["type"] == "ExternalName"
    assert tracker.kwargs["password"] == fake_secret("TRACKER_DB_PASSWORD", False)


def test_processes_call_each_other_on_deployed_services() -> None:
    manifests = load_manifests()
    gateway = settings_of("gateway")
    rasa = read_rasa_endpoints(env_of("rasa"))
    for url in (gateway.rasa_url, gateway.actions_url, rasa.action.url):
        parts = urlsplit(url)
        service = named(manifests, "Service", str(parts.hostname))
        assert parts.port in [p["port"] for p in service.doc["spec"]["ports"]], url


def test_secret_template_has_every_key_and_no_real_secret() -> None:
    template = yaml.safe_load(SECRET_TEMPLATE.read_text(encoding="utf-8"))
    data = template["stringData"]
    for where, key in secret_refs(load_manifests()):
        assert key in data, f"{where} needs {key} in {SECRET_TEMPLATE.name}"
    for key, value in data.items():
        assert "changeme" in value, f"{key}: a template holds placeholders only"
    assert secret_problem("PSEUDONYM_KEY", "changeme") is not None, (
        "the processes refuse the template's key"
    )
