"""What the schemas cannot tell: the workloads are probed on the endpoints the
processes really serve, sized, locked down, scaled, kept available through node
drains, and wired to each other (Services, NetworkPolicies) as the code expects."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot import launcher
from tests.deploy.manifests import (
    Doc,
    Manifest,
    component,
    containers,
    load_manifests,
    named,
    of_kind,
    pod_labels,
    pod_spec,
    selects,
)
from tests.deploy.wiring import rasa_action_endpoint, settings_of

MANIFESTS = load_manifests()
DEPLOYMENTS = of_kind(MANIFESTS, "Deployment")
WORKLOADS = DEPLOYMENTS + of_kind(MANIFESTS, "Job")
LAUNCHED = {s.name: s for s in launcher.services(Path("model"), Path("bin"))}


def deployment_of(name: str) -> Manifest:
    """The Deployment whose pods are the launcher's service `name`."""
    found = [d for d in DEPLOYMENTS if component(d) == name]
    assert len(found) == 1, f"one Deployment with component {name}"
    return found[0]


def port_number(container: Doc, port: int | str) -> int:
    """A probe's or Service's port (a number or a container port's name)."""
    for declared in container.get("ports", []):
        if port in (declared["containerPort"], declared.get("name")):
            return int(declared["containerPort"])
    raise AssertionError(f"{container['name']} declares no port {port!r}")


def test_every_process_the_launcher_starts_is_deployed() -> None:
    assert sorted(component(d) for d in DEPLOYMENTS) == sorted(LAUNCHED)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=str)
def test_probes_ask_the_endpoint_the_launcher_waits_for(deployment: Manifest) -> None:
    ready = urlsplit(LAUNCHED[component(deployment)].ready_url)
    for container in pod_spec(deployment)["containers"]:
        for probe in ("readinessProbe", "livenessProbe"):
            assert probe in container, f"{deployment}: {container['name']} {probe}"
            get = container[probe]["httpGet"]
            assert get["path"] == ready.path, f"{deployment} {probe} path"
            assert port_number(container, get["port"]) == ready.port


@pytest.mark.parametrize("name", ["gateway", "rasa"])
def test_slow_starters_get_the_launchers_wait(name: str) -> None:
    """Rasa loads its model, the gateway migrates: liveness must not kill them
    before the time the launcher allows them to get ready."""
    for container in pod_spec(deployment_of(name))["containers"]:
        startup = container["startupProbe"]
        window = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        assert window >= launcher.READY_TIMEOUT_SECONDS, name


@pytest.mark.parametrize("workload", WORKLOADS, ids=str)
def test_containers_are_sized(workload: Manifest) -> None:
    for container in containers(workload):
        resources = container.get("resources", {})
        assert {"cpu", "memory"} <= set(resources.get("requests", {})), workload
        assert "memory" in resources.get("limits", {}), workload


@pytest.mark.parametrize("workload", WORKLOADS, ids=str)
def test_pods_run_as_non_root_without_privileges(workload: Manifest) -> None:
    spec = pod_spec(workload)
    pod = spec.get("securityContext", {})
    assert pod.get("runAsNonRoot") is True, workload
    assert int(pod.get("runAsUser", 0)) > 0, workload
    assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    assert spec.get("automountServiceAccountToken") is False, "no API access needed"
    for container in containers(workload):
        own = container.get("securityContext", {})
        assert own.get("allowPrivilegeEscalation") is False, workload
        assert own.get("capabilities", {}).get("drop") == ["ALL"], workload
        assert own.get("readOnlyRootFilesystem") is True, workload
        assert "privileged" not in own and "runAsUser" not in own, workload


def test_gateway_may_finish_its_turns_when_stopped() -> None:
    grace = pod_spec(deployment_of("gateway"))["terminationGracePeriodSeconds"]
    assert grace >= launcher.STOP_GRACE_SECONDS


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=str)
def test_deployment_selects_its_own_pods(deployment: Manifest) -> None:
    assert selects(deployment.doc["spec"]["selector"], pod_labels(deployment))
    others = [d for d in WORKLOADS if d is not deployment]
    for other in others:
        assert not selects(deployment.doc["spec"]["selector"], pod_labels(other))


@pytest.mark.parametrize("hpa", of_kind(MANIFESTS, "HorizontalPodAutoscaler"), ids=str)
def test_autoscaler_targets_a_deployment_that_has_cpu_requests(hpa: Manifest) -> None:
    target = hpa.doc["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
    deployment = named(MANIFESTS, "Deployment", target["name"])
    for container in pod_spec(deployment)["containers"]:
        assert "cpu" in container["resources"]["requests"], "utilisation needs it"
    spec = hpa.doc["spec"]
    assert 2 <= spec["minReplicas"] <= spec["maxReplicas"], "two pods at least"


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=str)
def test_each_deployment_is_autoscaled_once(deployment: Manifest) -> None:
    targets = [
        h.doc["spec"]["scaleTargetRef"]["name"]
        for h in of_kind(MANIFESTS, "HorizontalPodAutoscaler")
    ]
    assert targets.count(deployment.name) == 1


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=str)
def test_disruption_budget_protects_and_lets_nodes_drain(deployment: Manifest) -> None:
    budgets = [
        b
        for b in of_kind(MANIFESTS, "PodDisruptionBudget")
        if selects(b.doc["spec"]["selector"], pod_labels(deployment))
    ]
    assert len(budgets) == 1, f"{deployment}: one PodDisruptionBudget"
    spec = budgets[0].doc["spec"]
    hpa = [
        h
        for h in of_kind(MANIFESTS, "HorizontalPodAutoscaler")
        if h.doc["spec"]["scaleTargetRef"]["name"] == deployment.name
    ][0]
    fewest = hpa.doc["spec"]["minReplicas"]
    if "maxUnavailable" in spec:
        assert 1 <= int(spec["maxUnavailable"]) < fewest
    else:
        assert 1 <= int(spec["minAvailable"]) < fewest


@pytest.mark.parametrize("service", of_kind(MANIFESTS, "Service"), ids=str)
def test_service_reaches_one_deployments_port(service: Manifest) -> None:
    spec = service.doc["spec"]
    if spec.get("type") == "ExternalName":
        assert "selector" not in spec
        return
    matched = [
        d
        for d in DEPLOYMENTS
        if selects({"matchLabels": spec["selector"]}, pod_labels(d))
    ]
    assert len(matched) == 1, f"{service} selects one Deployment"
    container = pod_spec(matched[0])["containers"][0]
    for port in spec["ports"]:
        port_number(container, port.get("targetPort", port["port"]))


def allowed_from(target: Manifest, port: int) -> set[str]:
    """The components whose pods the NetworkPolicies let reach `target`'s pods
    on `port` ({"*"}: any pod; no policy at all: any pod too)."""
    policies = [
        p
        for p in of_kind(MANIFESTS, "NetworkPolicy")
        if selects(p.doc["spec"]["podSelector"], pod_labels(target))
    ]
    if not policies:
        return {"*"}
    allowed: set[str] = set()
    for policy in policies:
        for rule in policy.doc["spec"].get("ingress", []):
            ports = {int(p["port"]) for p in rule.get("ports", [])}
            if ports and port not in ports:
                continue
            if "from" not in rule:
                return {"*"}
            for peer in rule["from"]:
                assert set(peer) == {"podSelector"}, f"unsupported peer {peer}"
                allowed.update(
                    component(w)
                    for w in WORKLOADS
                    if selects(peer["podSelector"], pod_labels(w))
                )
    return allowed


def callers() -> dict[str, set[str]]:
    """Who calls whom, from the configuration: the gateway calls RASA_URL and
    ACTIONS_URL (its health check), Rasa calls its action endpoint."""
    gateway = settings_of("gateway")
    calls: dict[str, set[str]] = {}
    for url, caller in (
        (gateway.rasa_url, "gateway"),
        (gateway.actions_url, "gateway"),
        (rasa_action_endpoint(), "rasa"),
    ):
        service = named(MANIFESTS, "Service", str(urlsplit(url).hostname))
        target = [
            d
            for d in DEPLOYMENTS
            if selects({"matchLabels": service.doc["spec"]["selector"]}, pod_labels(d))
        ][0]
        calls.setdefault(component(target), set()).add(caller)
    return calls


@pytest.mark.parametrize("target", ["rasa", "actions"])
def test_internal_servers_admit_exactly_their_callers(target: str) -> None:
    deployment = deployment_of(target)
    port = LAUNCHED_PORTS[target]
    assert allowed_from(deployment, port) == callers()[target]


LAUNCHED_PORTS = {
    name: int(urlsplit(service.ready_url).port or 80)
    for name, service in LAUNCHED.items()
}


def test_gateway_is_reachable_from_the_ingress() -> None:
    assert allowed_from(deployment_of("gateway"), LAUNCHED_PORTS["gateway"]) == {"*"}
