"""`helm install` in the order helm runs it, on the real API server, while Argo pods arrive.

Helm's order: the pre-install hooks (the certificate Job and its RBAC), then
every chart object, then the post-install hooks (the registration Job). No
kubelet runs here, so each Job's own command runs as the Job's
ServiceAccount, and the Deployment's readiness is written to its status the
way a kubelet and the controller would report it. Between every step an
Argo-shaped pod is created in the target namespace: in audit mode none may be
refused, and the webhook configuration appears only once its caBundle is set
and a replica is ready.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

from kubernetes import client as k8s

from harness import helm
from harness.builders import ROOT, argo_pod
from harness.controlplane.client import create_pod
from harness.controlplane.plane import ControlPlane
from harness.controlplane.registration import RELEASE_NAMESPACE
from harness.controlplane.release import fullname

RELEASE = "order"
NAME = fullname(RELEASE)
HOOK = "helm.sh/hook"


def _phase(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("annotations", {}).get(HOOK, "chart"))


def _run_as(plane: ControlPlane, account: str, command: list[str], *extra: str) -> str:
    """`command` (a Job's), run here with a token of `account`; fails on a non-zero exit."""
    assert command[:2] == ["jetstream-pin", "certs"]
    kubeconfig = plane.kubeconfig_for(RELEASE_NAMESPACE, account)
    done = subprocess.run(
        [sys.executable, "-m", "webhook", *command[1:], *extra, f"--kubeconfig={kubeconfig}"],
        capture_output=True, text=True, timeout=90, cwd=ROOT, check=False,
    )  # fmt: skip
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


def _command(obj: dict[str, Any]) -> list[str]:
    spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    command: list[str] = spec["template"]["spec"]["containers"][0]["command"]
    return command


def _admitted(plane: ControlPlane, namespace: str, step: str) -> None:
    pod = argo_pod("my-experiment")
    pod["metadata"] |= {"namespace": namespace, "generateName": f"{step}-"}
    pod["metadata"].pop("name")
    answer = create_pod(plane, pod)
    assert answer.status == 201, f"{step}: {answer.status} {answer.message}"


def _configuration(plane: ControlPlane) -> Any:
    with plane.api() as api:
        try:
            return k8s.AdmissionregistrationV1Api(api).read_mutating_webhook_configuration(NAME)
        except k8s.ApiException as err:
            if err.status != 404:
                raise
            return None


def _set_ready(plane: ControlPlane, ready: int) -> None:
    status = {"status": {"replicas": 2, "readyReplicas": ready, "availableReplicas": ready}}
    plane.kubectl(
        "-n", RELEASE_NAMESPACE, "patch", "deployment", NAME, "--subresource=status",
        "--type=merge", "-p", json.dumps(status),
    )  # fmt: skip


def test_install_in_order_refuses_no_pod_in_audit_mode(control_plane: ControlPlane) -> None:
    plane = control_plane
    target = plane.namespace("install-order")
    values = {"mode": "audit", "webhook": {"namespaces": [target]}}
    objects = helm.render(RELEASE, RELEASE_NAMESPACE, plane.version.lstrip("v"), values=values)
    hooks = [o for o in objects if _phase(o) != "chart"]
    jobs = {o["metadata"]["name"]: o for o in hooks if o["kind"] == "Job"}
    rbac = [o for o in hooks if o["kind"] != "Job"]
    chart = [o for o in objects if _phase(o) == "chart"]
    cron = next(o for o in chart if o["kind"] == "CronJob")

    _admitted(plane, target, "before")
    plane.apply(rbac)  # pre-install hooks
    printed = _run_as(plane, f"{NAME}-certs", _command(jobs[f"{NAME}-certs"]))
    assert "exit 0" in printed, printed
    assert f"mutatingwebhookconfiguration {NAME}: not there yet" in printed
    _admitted(plane, target, "pre-install")

    plane.apply(chart)  # the release's objects: no webhook configuration among them
    assert _configuration(plane) is None
    _admitted(plane, target, "installed")

    plane.apply(rbac)  # post-install hooks; no replica is ready yet
    register = _command(jobs[f"{NAME}-register"])
    printed = _run_as(plane, f"{NAME}-certs", register, "--wait-seconds=3")
    assert "exit 2" in printed, printed
    assert "has 0/2 ready after 3 s; not registering" in printed
    assert _configuration(plane) is None
    _admitted(plane, target, "not-ready")

    _set_ready(plane, 1)
    printed = _run_as(plane, f"{NAME}-certs", register)
    assert "exit 0" in printed, printed
    assert "deployment jetstream-pin/order-jetstream-pin: 1/2 ready" in printed
    assert f"mutatingwebhookconfiguration {NAME}: created with caBundle (1 CA)" in printed
    configuration = _configuration(plane)
    with plane.api() as api:
        secret: Any = k8s.CoreV1Api(api).read_namespaced_secret(f"{NAME}-tls", RELEASE_NAMESPACE)
        owner: Any = k8s.RbacAuthorizationV1Api(api).read_cluster_role(f"{NAME}-renew")
    [hook] = configuration.webhooks
    assert hook.client_config.ca_bundle == secret.data["ca.crt"]
    assert base64.b64decode(hook.client_config.ca_bundle).startswith(b"-----BEGIN CERTIFICATE")
    assert hook.failure_policy == "Ignore"  # audit mode
    [reference] = configuration.metadata.owner_references
    assert (reference.kind, reference.name, reference.uid) == (
        "ClusterRole", f"{NAME}-renew", owner.metadata.uid,
    )  # fmt: skip
    # Registered, but its Service has no endpoint here: audit mode admits anyway.
    _admitted(plane, target, "registered")

    # helm upgrade: the post-upgrade run updates the configuration in place.
    printed = _run_as(plane, f"{NAME}-certs", register)
    assert f"mutatingwebhookconfiguration {NAME}: updated with caBundle (1 CA)" in printed
    # Between upgrades the CronJob renews, as its own narrower identity.
    printed = _run_as(plane, f"{NAME}-renew", _command(cron))
    assert "exit 0" in printed, printed
    assert f"secret {RELEASE_NAMESPACE}/{NAME}-tls: reused (still valid)" in printed
    assert f"mutatingwebhookconfiguration {NAME}: caBundle (1 CA) set on 1 webhook(s)" in printed
    plane.kubectl("delete", "mutatingwebhookconfiguration", NAME)
