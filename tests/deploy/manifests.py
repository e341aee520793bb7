"""deploy/: the Kubernetes manifests and the Dockerfile, loaded for the checks.

Everything here reads files only: no cluster, no Docker engine, no network.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
KUSTOMIZATION = K8S / "kustomization.yaml"
SECRET_TEMPLATE = K8S / "secret.example.yaml"
COMPONENT = "app.kubernetes.io/component"
KUBERNETES_VERSION = "1.28"
"""The newest schemas kubernetes-validate 1.28.3 ships."""

Doc = dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object and the file it is in."""

    path: Path
    doc: Doc

    @property
    def kind(self) -> str:
        """The object's kind."""
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        """The object's name."""
        return str(self.doc["metadata"]["name"])

    def __str__(self) -> str:
        return f"{self.path.name}: {self.kind}/{self.name}"


def load_manifests() -> list[Manifest]:
    """Every object of every YAML file in deploy/k8s (the kustomization aside)."""
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path == KUSTOMIZATION:
            continue
        with path.open(encoding="utf-8") as handle:
            docs = [doc for doc in yaml.safe_load_all(handle) if doc]
        found.extend(Manifest(path, doc) for doc in docs)
    return found


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    """The objects of one kind."""
    return [m for m in manifests if m.kind == kind]


def named(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    """The object of `kind` called `name` (AssertionError if there is none)."""
    found = [m for m in of_kind(manifests, kind) if m.name == name]
    assert found, f"no {kind} named {name} in deploy/k8s"
    return found[0]


def pod_spec(workload: Manifest) -> Doc:
    """The pod template's spec of a Deployment or a Job."""
    return dict(workload.doc["spec"]["template"]["spec"])


def pod_labels(workload: Manifest) -> dict[str, str]:
    """The labels of a Deployment's or Job's pods."""
    return dict(workload.doc["spec"]["template"]["metadata"]["labels"])


def component(workload: Manifest) -> str:
    """The app.kubernetes.io/component label of the workload's pods."""
    return pod_labels(workload)[COMPONENT]


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels only, as in deploy/k8s) picks these labels."""
    assert set(selector) <= {"matchLabels"}, f"unsupported selector {selector}"
    wanted = selector.get("matchLabels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def containers(workload: Manifest) -> list[Doc]:
    """The workload's containers (init containers included)."""
    spec = pod_spec(workload)
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def config_data(manifests: list[Manifest], name: str) -> dict[str, str]:
    """A ConfigMap's data."""
    return dict(named(manifests, "ConfigMap", name).doc.get("data", {}))


SecretValue = Callable[[str, bool], "str | None"]
"""(key, optional) -> the value a secret key has in the cluster, None: absent."""


def container_env(
    manifests: list[Manifest], container: Doc, secret: SecretValue
) -> dict[str, str]:
    """The environment Kubernetes gives `container`: envFrom ConfigMaps, then env
    (literal values, ConfigMap keys and Secret keys as `secret` says)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"unexpected envFrom {source}"
        env.update(config_data(manifests, source["configMapRef"]["name"]))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        ref = var["valueFrom"]
        if "configMapKeyRef" in ref:
            key = ref["configMapKeyRef"]
            env[var["name"]] = config_data(manifests, key["name"])[key["key"]]
        else:
            key = ref["secretKeyRef"]
            assert key["name"] == "prakerja-secrets", f"unknown Secret in {var}"
            value = secret(key["key"], bool(key.get("optional", False)))
            if value is not None:
                env[var["name"]] = value
    return env


def secret_refs(manifests: list[Manifest]) -> Iterator[tuple[Manifest, str]]:
    """(workload, key) for every Secret key a container refers to."""
    for workload in of_kind(manifests, "Deployment") + of_kind(manifests, "Job"):
        for container in containers(workload):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    yield workload, str(ref["key"])


ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def endpoint_variables(endpoints_yml: str) -> set[str]:
    """The ${VAR} names an endpoints file refers to."""
    return set(ENV_REFERENCE.findall(endpoints_yml))


def dockerfile() -> DockerfileParser:
    """deploy/Dockerfile, parsed."""
    return DockerfileParser(fileobj=io.BytesIO(DOCKERFILE.read_bytes()))


def final_stage(parser: DockerfileParser) -> list[Doc]:
    """The instructions of the Dockerfile's last stage (the image that runs)."""
    instructions = parser.structure
    starts = [i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM"]
    return list(instructions[starts[-1] :])
