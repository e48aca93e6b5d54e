"""`helm test`'s pod, judged by the real API server, and its check run against a real webhook.

The test pod is a Pod no kubelet runs here, so the API server accepts it
(server-side dry run, Pod Security `restricted`) and its own command runs
here, as its own ServiceAccount, against a webhook registered for the
namespace, exactly as it would in the cluster.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from harness import helm
from harness.builders import JETSTREAM, ROOT
from harness.controlplane.plane import ControlPlane
from harness.controlplane.registration import RELEASE_NAMESPACE
from harness.controlplane.release import fullname
from tests.cluster.conftest import Deploy
from tests.cluster.test_chart_objects import RESTRICTED

TEMPLATE = "templates/tests/check.yaml"


def _install_test(plane: ControlPlane, release: str, values: dict[str, Any]) -> list[str]:
    """Apply the test's ServiceAccount and RBAC; the API server judges the pod; its command."""
    objects = helm.render(
        release, RELEASE_NAMESPACE, plane.version.lstrip("v"), values=values,
        extra=("--show-only", TEMPLATE),
    )  # fmt: skip
    [pod] = [o for o in objects if o["kind"] == "Pod"]
    assert all(o["metadata"]["annotations"]["helm.sh/hook"] == "test" for o in objects)
    plane.apply([o for o in objects if o is not pod])
    judged = plane.namespace("helm-test-pod", RESTRICTED)  # Pod Security judges the pod there
    [account] = [o for o in objects if o["kind"] == "ServiceAccount"]
    moved = [o | {"metadata": o["metadata"] | {"namespace": judged}} for o in (account, pod)]
    plane.apply(moved[:1])
    rehearsed = plane.apply(moved[1:], "--dry-run=server")
    assert "Warning" not in rehearsed, rehearsed
    command: list[str] = pod["spec"]["containers"][0]["command"]
    return command


def _run_test(plane: ControlPlane, release: str, command: list[str]) -> tuple[int, str]:
    assert command[:2] == ["jetstream-pin", "check"]
    kubeconfig = plane.kubeconfig_for(RELEASE_NAMESPACE, f"{fullname(release)}-test")
    done = subprocess.run(
        [sys.executable, "-m", "webhook", *command[1:], f"--kubeconfig={kubeconfig}"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def _values(namespace: str, **extra: Any) -> dict[str, Any]:
    image = {"repository": JETSTREAM, "history": {"type": "gcr"}}  # only its name is used
    return {"webhook": {"namespaces": [namespace]}, "config": {"images": [image]}, **extra}


def test_helm_test_passes_against_an_enforcing_webhook(deploy: Deploy) -> None:
    deployment = deploy("helm-test")
    command = _install_test(deployment.plane, deployment.release, _values(deployment.namespace))
    code, printed = _run_test(deployment.plane, deployment.release, command)
    assert code == 0, printed
    assert f"jetstream-pin check {deployment.namespace}: pinned to {JETSTREAM}@sha256:" in printed
    assert "(jetstream/pin-reason: not-enrolled)" in printed


def test_helm_test_passes_in_audit_mode_on_the_warning(deploy: Deploy) -> None:
    deployment = deploy("helm-test-audit", mode="audit")
    values = _values(deployment.namespace, mode="audit")
    command = _install_test(deployment.plane, deployment.release, values)
    assert "--mode=audit" in command
    code, printed = _run_test(deployment.plane, deployment.release, command)
    assert code == 0, printed
    assert "audit mode, the webhook answered: jetstream-pin audit mode: would pin" in printed


def test_helm_test_fails_where_no_webhook_answers(control_plane: ControlPlane) -> None:
    namespace = control_plane.namespace("helm-test-nobody")
    command = _install_test(control_plane, "helm-test-nobody", _values(namespace))
    code, printed = _run_test(control_plane, "helm-test-nobody", command)
    assert code == 1, printed
    assert "not pinned (" in printed
    assert "is the webhook registered for this namespace?" in printed
