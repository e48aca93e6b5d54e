"""The chart's policy on every Kubernetes the project builds.

The API server compiles each CEL expression when the policy is created, with
the CEL libraries of its own version, and refuses one it cannot compile; the
refusal and the admission below then evaluate every expression on the path.
1.30 is the oldest with ValidatingAdmissionPolicy v1; on 1.27 (the oldest the
chart supports) the chart installs no policy and its notes say so.
"""

from __future__ import annotations

import pytest

from harness import helm
from harness.builders import JETSTREAM, argo_pod, digest, sha
from harness.controlplane import policy, release
from harness.controlplane.client import create_in
from harness.controlplane.plane import ControlPlane
from harness.controlplane.registration import RELEASE_NAMESPACE


@pytest.mark.parametrize("plane_fixture", ["policy_control_plane", "control_plane"])
def test_the_policy_compiles_and_judges(request: pytest.FixtureRequest, plane_fixture: str) -> None:
    plane: ControlPlane = request.getfixturevalue(plane_fixture)
    namespace = plane.namespace("policy-compiles")
    applied = policy.install(plane, "policy-compiles", namespace, release.chart_values([namespace]))
    assert "Warning" not in applied, applied
    refused = create_in(plane, namespace, argo_pod("my-experiment"))
    assert refused.status == 403
    assert "experiment 'my-experiment' is not pinned by jetstream-pin: container 'main'" in (
        refused.message
    )
    commit = {"name": "METRIC_HUB_SHA", "value": sha("x")}
    pinned = argo_pod("my-experiment", image_ref=f"{JETSTREAM}@{digest('x')}", env=[commit])
    assert create_in(plane, namespace, pinned).status == 201


def _dry_run_install(plane: ControlPlane, name: str) -> str:
    """`helm install --dry-run=server`: the manifest and notes for this API server's version."""
    try:
        done = helm.run_helm(
            "install", name, str(helm.CHART), "--namespace", RELEASE_NAMESPACE,
            "--dry-run=server", "--kubeconfig", str(plane.kubeconfig),
        )  # fmt: skip
    except helm.HelmMissing as err:
        pytest.fail(str(err))
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_oldest_kubernetes_gets_no_policy_and_a_note(oldest_control_plane: ControlPlane) -> None:
    output = _dry_run_install(oldest_control_plane, "notes-oldest")
    assert "kind: MutatingWebhookConfiguration" in output
    assert "ValidatingAdmissionPolicy" not in output.split("NOTES:")[0]
    assert (
        "Admission policy: not installed: ValidatingAdmissionPolicy needs Kubernetes >= 1.30 "
        f"(this cluster: {oldest_control_plane.version});"
    ) in output


def test_notes_name_the_policy_where_it_is_installed(policy_control_plane: ControlPlane) -> None:
    output = _dry_run_install(policy_control_plane, "notes-policy")
    assert "kind: ValidatingAdmissionPolicyBinding" in output
    assert (
        "Admission policy: ValidatingAdmissionPolicy notes-policy-jetstream-pin refuses "
        "experiment pods the webhook did not pin"
    ) in output
