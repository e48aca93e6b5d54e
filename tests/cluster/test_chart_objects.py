"""Every object `helm template` renders, accepted by the real API server.

On the newest Kubernetes built and on the oldest the chart claims to support
(Chart.yaml `kubeVersion`), for each certificate mode: a server-side dry run of
everything, then everything created for real (no object needs a node; the
webhook configuration and the admission policy are removed right after: the
first has no pods behind its Service, both are cluster-wide).
The namespace enforces Pod Security `restricted`, so the API server itself
judges the chart's pod templates: a warning fails the test.
"""

from __future__ import annotations

import pytest

from harness import helm
from harness.controlplane import release
from harness.controlplane.plane import ControlPlane
from tests.chart.test_chart import MODES

CLUSTER_WIDE_ADMISSION = (
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)
RESTRICTED = {
    f"pod-security.kubernetes.io/{action}": "restricted" for action in ("enforce", "warn", "audit")
}


def _slug(mode: str) -> str:
    return mode.lower().replace(" ", "-")


def _accepts_the_chart(plane: ControlPlane, mode: str) -> None:
    name = f"chart-{_slug(mode)}"
    namespace = plane.namespace(name, RESTRICTED)
    sets = tuple(MODES[mode])
    objects = helm.render(name, namespace, plane.version.lstrip("v"), sets)
    if any(o["apiVersion"].startswith("cert-manager.io/") for o in objects):
        release.install_crds(plane, "cert-manager")
    configuration = helm.webhook_configuration(objects)
    if configuration not in objects:  # selfManaged: the registration Job creates it
        assert "Warning" not in plane.apply([configuration], "--dry-run=server")
    # Pods (helm test's) need their ServiceAccount stored first; everything else goes at once.
    rounds = [
        [o for o in objects if o["kind"] != "Pod"],
        [o for o in objects if o["kind"] == "Pod"],
    ]
    created = ""
    for batch in rounds:
        rehearsed = plane.apply(batch, "--dry-run=server")
        assert "Warning" not in rehearsed, rehearsed
        created += plane.apply(batch)
    # Cluster-wide and aimed at namespace argo: removed, so no other test meets them.
    cluster_wide = [o for o in objects if o["kind"] in CLUSTER_WIDE_ADMISSION]
    for obj in [*cluster_wide, configuration]:
        plane.kubectl("delete", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found")
    assert "Warning" not in created, created
    for obj in objects:
        assert f"{obj['kind'].lower()}" in created.lower()
    [hook] = configuration["webhooks"]
    assert ("matchConditions" in hook) == (plane.minor >= 28), "matchConditions from 1.28 on"
    policies = sorted(o["kind"] for o in cluster_wide if o["kind"] != configuration["kind"])
    if plane.minor >= 30:
        assert policies == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    else:
        assert policies == [], "ValidatingAdmissionPolicy v1 needs Kubernetes 1.30"


@pytest.mark.parametrize("mode", list(MODES))
def test_newest_kubernetes_accepts_every_object(control_plane: ControlPlane, mode: str) -> None:
    _accepts_the_chart(control_plane, mode)


@pytest.mark.parametrize("mode", list(MODES))
def test_oldest_kubernetes_accepts_every_object(
    oldest_control_plane: ControlPlane, mode: str
) -> None:
    _accepts_the_chart(oldest_control_plane, mode)
