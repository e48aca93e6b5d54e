"""The ServiceMonitor and PrometheusRule, judged by the real API server with the
CRDs of prometheus-operator's own module (linked by scripts/get-kube)."""

from __future__ import annotations

from harness import helm
from harness.controlplane import release
from harness.controlplane.plane import ControlPlane
from tests.chart.test_monitoring import ENABLED


def test_prometheus_objects_are_accepted(control_plane: ControlPlane) -> None:
    plane = control_plane
    namespace = plane.namespace("monitoring-objects")
    objects = [
        o
        for o in helm.render("monitored", namespace, plane.version.lstrip("v"), ENABLED)
        if o["apiVersion"] == "monitoring.coreos.com/v1"
    ]
    assert sorted(o["kind"] for o in objects) == ["PrometheusRule", "ServiceMonitor"]
    for kind in ("servicemonitors", "prometheusrules"):
        release.install_crds(plane, "prometheus-operator", f"*_{kind}.yaml")
    rehearsed = plane.apply(objects, "--dry-run=server")
    assert "Warning" not in rehearsed, rehearsed
    created = plane.apply(objects)
    assert (
        "prometheusrule.monitoring.coreos.com/monitored-jetstream-pin serverside-applied" in created
    )
    assert (
        "servicemonitor.monitoring.coreos.com/monitored-jetstream-pin serverside-applied" in created
    )
    stored = plane.kubectl(
        "-n", namespace, "get", "servicemonitor", "monitored-jetstream-pin",
        "-o", "jsonpath={.spec.endpoints[0].tlsConfig.ca.secret.key}",
    ).stdout  # fmt: skip
    assert stored == "ca.crt"  # kept as written: the CRD schema knows the field
