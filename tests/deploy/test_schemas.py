"""Every manifest in deploy/k8s is valid for Kubernetes, checked offline.

kubernetes-validate ships the API's JSON schemas; strict mode also refuses
fields the API does not know (a typo such as `readinesProbe` would otherwise be
dropped silently by the cluster).
"""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from tests.deploy.manifests import (
    K8S,
    KUBERNETES_VERSION,
    KUSTOMIZATION,
    SECRET_TEMPLATE,
    Manifest,
    load_manifests,
    of_kind,
)

MANIFESTS = load_manifests()


def test_the_deployment_has_every_part() -> None:
    kinds = [m.kind for m in MANIFESTS]
    for kind, at_least in {
        "Deployment": 3,
        "Service": 3,
        "HorizontalPodAutoscaler": 3,
        "PodDisruptionBudget": 3,
        "Job": 1,
        "ConfigMap": 1,
        "Secret": 1,
        "NetworkPolicy": 1,
    }.items():
        assert kinds.count(kind) >= at_least, f"deploy/k8s needs {at_least} {kind}"


@pytest.mark.parametrize("manifest", MANIFESTS, ids=str)
def test_manifest_matches_the_kubernetes_schema(manifest: Manifest) -> None:
    try:
        kubernetes_validate.validate(manifest.doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(part) for part in exc.path)
        pytest.fail(f"{manifest}: {path}: {exc.message}")


def test_names_are_unique_per_kind() -> None:
    keys = [(m.kind, m.name) for m in MANIFESTS]
    assert len(keys) == len(set(keys))


def test_kustomization_applies_every_manifest_but_the_secret_template() -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - {KUSTOMIZATION.name}
    assert listed == files - {SECRET_TEMPLATE.name}
    assert kustomization["namespace"] == "prakerja"
    images = {image["name"] for image in kustomization.get("images", [])}
    used = {
        c["image"]
        for w in of_kind(MANIFESTS, "Deployment") + of_kind(MANIFESTS, "Job")
        for c in w.doc["spec"]["template"]["spec"]["containers"]
    }
    assert used <= images, "every image is set (name and tag) by the kustomization"
