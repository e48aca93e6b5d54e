"""Argo's real workflow-controller against the local control plane.

One controller per namespace (`--namespaced`), each with Argo's own
namespace-install RBAC (read from Argo's Go module, never copied here) and a
token of its `argo` ServiceAccount, so tests with different controller
settings (say `TRANSIENT_ERROR_PATTERN`) run side by side. No kubelet runs:
the controller creates each step's pods, and they stay Pending.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

from harness.controlplane import processes, tools
from harness.controlplane.plane import ControlPlane

ARGO_VERSION = "v4.1.4"  # scripts/get-kube builds this one
EXECUTOR = f"quay.io/argoproj/argoexec:{ARGO_VERSION}"
CONFIGMAP = "workflow-controller-configmap"
SERVICE_ACCOUNT = "argo"
STARTED = "Starting Workflow Controller"


def _module_manifests() -> Path:
    """manifests/ of Argo's module (.tools/argo-crds links into it)."""
    return tools.crds("argo").resolve().parents[2]


def rbac(namespace: str) -> list[dict[str, Any]]:
    """Argo's namespace-install ServiceAccount, Role and RoleBinding, for `namespace`."""
    manifests = _module_manifests()
    roles = manifests / "namespace-install" / "workflow-controller-rbac"
    paths = [
        manifests / "base" / "workflow-controller" / "workflow-controller-sa.yaml",
        *sorted(roles.glob("*-role*.yaml")),
    ]
    documents: list[dict[str, Any]] = []
    for path in paths:
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                document["metadata"]["namespace"] = namespace
                for subject in document.get("subjects", []):
                    subject["namespace"] = namespace
                documents.append(document)
    return documents


def executor_rbac(namespace: str) -> list[dict[str, Any]]:
    """Argo's own Role for its emissary executor (workflowtaskresults) and its binding to
    the namespace's `default` ServiceAccount, which Workflow pods run as: what a pod's
    `wait` container needs once pods really run."""
    base = _module_manifests() / "quick-start" / "base"
    paths = [base / "executor" / "emissary" / "executor-role.yaml",
             base / "executor-default-rolebinding.yaml"]  # fmt: skip
    documents: list[dict[str, Any]] = []
    for path in paths:
        document = yaml.safe_load(path.read_text())
        document["metadata"]["namespace"] = namespace
        for subject in document.get("subjects", []):
            subject["namespace"] = namespace
        documents.append(document)
    return documents


@dataclass
class Controller:
    namespace: str
    running: processes.Running

    def log(self) -> str:
        return self.running.log.read_text(errors="replace")


def start_controller(
    plane: ControlPlane, namespace: str, workdir: Path, env: dict[str, str] | None = None
) -> Controller:
    """Start a controller managing `namespace` and wait until it runs."""
    plane.apply(rbac(namespace))
    config = {"metricsConfig": {"enabled": False}, "telemetryConfig": {"enabled": False}}
    plane.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": CONFIGMAP, "namespace": namespace},
                "data": {key: yaml.safe_dump(value) for key, value in config.items()},
            }
        ]
    )
    kubeconfig = plane.kubeconfig_for(namespace, SERVICE_ACCOUNT)
    workdir.mkdir(parents=True, exist_ok=True)
    settings = {"LEADER_ELECTION_DISABLE": "true", **(env or {})}
    running = processes.start(
        f"workflow-controller {namespace}",
        [
            tools.binary("workflow-controller"), f"--kubeconfig={kubeconfig}",
            "--namespaced", f"--managed-namespace={namespace}", f"--namespace={namespace}",
            f"--configmap={CONFIGMAP}", f"--executor-image={EXECUTOR}",
            "--loglevel=info", "--log-format=json",
        ],
        workdir / f"workflow-controller-{namespace}.log",
        env=dict(os.environ, **settings),
    )  # fmt: skip
    controller = Controller(namespace, running)
    processes.wait_until(running, lambda: STARTED in controller.log(), 60, "started")
    return controller


def submit(plane: ControlPlane, namespace: str, workflow: dict[str, Any]) -> str:
    """Create the Workflow (as `argo submit` does); returns its name."""
    body = json.loads(json.dumps(workflow))
    body["metadata"]["namespace"] = namespace
    with plane.api() as api:
        created: Any = k8s.CustomObjectsApi(api).create_namespaced_custom_object(
            "argoproj.io", "v1alpha1", namespace, "workflows", body
        )
    name: str = created["metadata"]["name"]
    return name


def workflow(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    with plane.api() as api:
        found: dict[str, Any] = k8s.CustomObjectsApi(api).get_namespaced_custom_object(  # type: ignore[assignment]
            "argoproj.io", "v1alpha1", namespace, "workflows", name
        )
    return found


def pods_of(plane: ControlPlane, namespace: str, name: str) -> list[dict[str, Any]]:
    """The stored pods of Workflow `name`, as plain JSON."""
    with plane.api() as api:
        core: Any = k8s.CoreV1Api(api)
        response = core.list_namespaced_pod(
            namespace,
            label_selector=f"workflows.argoproj.io/workflow={name}",
            _preload_content=False,
        )
        items: list[dict[str, Any]] = json.loads(response.data)["items"]
    return items


def wait_for_pods(
    plane: ControlPlane, namespace: str, name: str, count: int, timeout: float = 120
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        pods = pods_of(plane, namespace, name)
        if len(pods) >= count:
            return pods
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(pods)} of {count} pods of {name} after {timeout} s")
        time.sleep(0.2)
