"""deploy/Dockerfile and the commands the manifests run in its image: the base,
the non-root user the pods run as, the pinned requirements, the baked model, and
the launcher's own commands (so `make run` and Kubernetes start the same
processes). Parsed only: there is no Docker engine here."""

from __future__ import annotations

import json
import shlex
from pathlib import Path, PurePosixPath

import pytest

from bot import launcher
from tests.deploy.manifests import (
    DOCKERIGNORE,
    Manifest,
    component,
    containers,
    dockerfile,
    final_stage,
    load_manifests,
    of_kind,
    pod_spec,
)
from tests.deploy.wiring import ENDPOINTS_CONFIGMAP, ENDPOINTS_KEY

MANIFESTS = load_manifests()
WORKLOADS = of_kind(MANIFESTS, "Deployment") + of_kind(MANIFESTS, "Job")
PARSER = dockerfile()
FINAL = final_stage(PARSER)
VENV_BIN = "/opt/venv/bin"
MAY_DIFFER = {"--interface": "the pod listens on all its addresses"}


def last(instruction: str) -> str:
    """The value of the final stage's last `instruction`."""
    values = [i["value"] for i in FINAL if i["instruction"] == instruction]
    assert values, f"the final stage has no {instruction}"
    return str(values[-1])


def argv(instruction_value: str) -> list[str]:
    """A RUN/CMD value as a list of arguments (exec or shell form)."""
    value = instruction_value.strip()
    return list(json.loads(value)) if value.startswith("[") else shlex.split(value)


def test_every_stage_is_python_3_10_slim() -> None:
    stages = {i["value"].split()[-1] for i in PARSER.structure if " AS " in i["value"]}
    bases = [image for image in PARSER.parent_images if image not in stages]
    assert bases and all(image.startswith("python:3.10-slim") for image in bases)


def test_image_runs_as_the_non_root_user_of_the_pods() -> None:
    user, _, group = last("USER").partition(":")
    assert user.isdigit() and int(user) > 0, "numeric, so runAsNonRoot can check it"
    for workload in WORKLOADS:
        pod = pod_spec(workload)["securityContext"]
        assert pod["runAsUser"] == int(user), workload
        assert pod["runAsGroup"] == int(group or user), workload


def test_requirements_are_the_pinned_set_and_consistent() -> None:
    runs = " ".join(i["value"] for i in PARSER.structure if i["instruction"] == "RUN")
    assert "pip install --no-deps -r /tmp/requirements.txt" in runs
    assert "pip check" in runs


def test_the_model_is_trained_into_the_image_where_rasa_loads_it() -> None:
    runs = [argv(i["value"]) for i in PARSER.structure if i["instruction"] == "RUN"]
    trains = [r for r in runs if r[:2] == [f"{VENV_BIN}/rasa", "train"]]
    assert trains, "the model is trained at build time"
    assert trains[0][trains[0].index("--fixed-model-name") + 1] == "prakerja"
    copied = [
        argv(i["value"])[-1]
        for i in FINAL
        if i["instruction"] == "COPY" and "prakerja.tar.gz" in i["value"]
    ]
    (rasa,) = [c for w in WORKLOADS for c in containers(w) if component(w) == "rasa"]
    model = rasa["command"][rasa["command"].index("--model") + 1]
    workdir = PurePosixPath(last("WORKDIR"))
    assert [workdir / path for path in copied] == [workdir / model]


def test_commands_find_the_venv_and_the_code() -> None:
    env = PARSER.envs
    assert env["PATH"].startswith(VENV_BIN + ":")
    assert env["PYTHONPATH"] == last("WORKDIR") == "/app"
    assert env["RASA_TELEMETRY_ENABLED"] == "false"
    assert env["HOME"] == "/tmp", "the only writable place (readOnlyRootFilesystem)"
    assert argv(last("CMD")) == ["python", "-m", "bot"]


def test_local_state_stays_out_of_the_image() -> None:
    ignored = set(DOCKERIGNORE.read_text(encoding="utf-8").split())
    # var/ holds the development pseudonym key and SQLite files.
    assert {".git", ".venv", "var", "models", "*.db"} <= ignored


def launcher_command(workload: Manifest) -> list[str]:
    """The command bot/launcher.py runs for the same process."""
    bin_dir = Path(VENV_BIN)
    if workload.kind == "Job":
        return launcher.seed_command(bin_dir)
    by_name = {s.name: s for s in launcher.services(Path("MODEL"), bin_dir)}
    return by_name[component(workload)].command


def mounted_endpoints(workload: Manifest) -> str:
    """Where the workload mounts Rasa's endpoints file from its ConfigMap."""
    spec = pod_spec(workload)
    volumes = {
        v["name"]
        for v in spec.get("volumes", [])
        if v.get("configMap", {}).get("name") == ENDPOINTS_CONFIGMAP
        and any(i["key"] == ENDPOINTS_KEY for i in v["configMap"]["items"])
    }
    (mount,) = [
        m for m in spec["containers"][0]["volumeMounts"] if m["name"] in volumes
    ]
    return str(PurePosixPath(mount["mountPath"]) / ENDPOINTS_KEY)


@pytest.mark.parametrize("workload", WORKLOADS, ids=str)
def test_pods_run_the_launchers_commands(workload: Manifest) -> None:
    (container,) = pod_spec(workload)["containers"]
    deployed = list(container["command"]) + list(container.get("args", []))
    local = launcher_command(workload)
    assert deployed[0] == Path(local[0]).name, "the image's PATH finds it"
    assert len(deployed) == len(local), f"{deployed} vs {local}"
    for index, (mine, theirs) in enumerate(zip(deployed[1:], local[1:], strict=True)):
        flag = local[index]  # the option this value belongs to
        if flag == "--model":
            assert mine == "models/prakerja.tar.gz"
        elif flag == "--endpoints":
            assert mine == mounted_endpoints(workload)
        elif flag not in MAY_DIFFER:
            assert mine == theirs, f"{workload}: {flag} {mine} (launcher: {theirs})"
