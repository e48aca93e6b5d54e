"""Argo runs Jetstream's workflow to the end, each analysis pod on its experiment's tooling.

The Workflow is `examples/argo-workflow.yaml` (every image `jetstream:latest`);
the kubelet's `imageID` of each `main` container must be the digest the
webhook chose for its experiment, the same that `jetstream-pin explain` gives
on this machine with the configuration the chart installed, and the process
must have printed that experiment's METRIC_HUB_SHA.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import yaml

from harness.builders import EXAMPLES
from harness.controlplane import argo
from harness.controlplane.nodecluster import WORKFLOW_NAMESPACE, NodeCluster, get
from tests.node.cluster import jetstream_pin

TIMEOUT = 300


def _workflow(experiments: list[dict[str, Any]] | None = None,
              labels: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    workflow: dict[str, Any] = yaml.safe_load((EXAMPLES / "argo-workflow.yaml").read_text())
    workflow = copy.deepcopy(workflow)
    if experiments is not None:
        for parameter in workflow["spec"]["arguments"]["parameters"]:
            if parameter["name"] == "experiments":
                parameter["value"] = json.dumps(experiments)
    workflow["metadata"]["labels"].update(labels or {})
    return workflow


def _run(cluster: NodeCluster, workflow: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Submit, wait for Succeeded; the Workflow's name and its pods."""
    name = argo.submit(cluster.plane, WORKFLOW_NAMESPACE, workflow)

    def phase() -> str:
        return str(argo.workflow(cluster.plane, WORKFLOW_NAMESPACE, name)
                   .get("status", {}).get("phase", ""))  # fmt: skip

    def nodes() -> Any:
        status = argo.workflow(cluster.plane, WORKFLOW_NAMESPACE, name).get("status", {})
        return {n["displayName"]: (n["phase"], n.get("message", ""))
                for n in status.get("nodes", {}).values()}  # fmt: skip

    cluster.plane.wait_for(
        lambda: phase() in ("Succeeded", "Failed", "Error"), TIMEOUT, f"{name} to end", nodes
    )
    assert phase() == "Succeeded", nodes()
    return name, argo.pods_of(cluster.plane, WORKFLOW_NAMESPACE, name)


def _main(pod: dict[str, Any]) -> dict[str, Any]:
    [status] = [s for s in pod["status"]["containerStatuses"] if s["name"] == "main"]
    found: dict[str, Any] = status
    return found


def _slug(pod: dict[str, Any]) -> str:
    [main] = [c for c in pod["spec"]["containers"] if c["name"] == "main"]
    [flag] = [a for a in main.get("args", []) + main.get("command", [])
              if a.startswith("--experiment_slug=")]  # fmt: skip
    return str(flag).split("=", 1)[1]


def _seconds(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_jetstream_workflow_runs_each_pod_on_its_pinned_tooling(
    node_cluster: NodeCluster,
) -> None:
    _, pods = _run(node_cluster, _workflow())
    assert len(pods) == 9  # four ensure-enrollments, five analysis dates
    decided: dict[str, Any] = {}
    for pod in pods:
        slug = _slug(pod)
        if slug not in decided:
            decided[slug] = jetstream_pin(
                "explain", "--config", str(node_cluster.config_file), "--slug", slug, "--json"
            )
        expected = decided[slug]
        annotations = pod["metadata"]["annotations"]
        [image] = expected["images"]
        [repo] = expected["configRepos"]
        assert annotations["jetstream/pin-reason"] == expected["reason"], slug
        assert annotations["jetstream/pinned-image"] == image["image"]
        status = _main(pod)
        assert status["imageID"] == image["image"], (slug, status["imageID"])
        assert status["state"]["terminated"]["exitCode"] == 0
        logs = node_cluster.plane.kubectl(
            "-n", WORKFLOW_NAMESPACE, "logs", pod["metadata"]["name"], "-c", "main"
        ).stdout
        assert f"METRIC_HUB_SHA={repo['sha']}" in logs, logs
        assert f"--experiment_slug={slug}" in logs
    reasons = {slug: d["reason"] for slug, d in decided.items()}
    assert reasons == {
        "firefox-desktop-private-browsing-redesign-rollout": "enrollment",
        "android-onboarding-notification-permission-v2": "breaking",
        "my-experiment": "breaking",
        "brand-new-experiment": "not-enrolled",
    }
    started = [
        (_seconds(_main(p)["state"]["terminated"]["startedAt"])
         - _seconds(p["metadata"]["creationTimestamp"])).total_seconds()
        for p in pods
    ]  # fmt: skip
    print(f"analysis pods, created to main started: {sorted(started)} s (1 s resolution)")


def test_a_workflow_labelled_latest_runs_on_the_newest_image(node_cluster: NodeCluster) -> None:
    workflow = _workflow([{"slug": "my-experiment", "dates": []}], {"jetstream/pin": "latest"})
    _, pods = _run(node_cluster, workflow)
    newest = node_cluster.release_digest("latest")
    assert pods
    for pod in pods:
        assert _main(pod)["imageID"].endswith(f"@{newest}")
        assert pod["metadata"]["annotations"]["jetstream/pin-reason"] == "latest"


def test_the_report_on_this_machine_names_every_experiment(node_cluster: NodeCluster) -> None:
    report = jetstream_pin("report", "--config", str(node_cluster.config_file), "--json")
    text = json.dumps(report)
    for slug in ("my-experiment", "brand-new-experiment", "long-running-study"):
        assert slug in text
    newest = node_cluster.release_digest("latest")
    assert newest in text
    assert get(node_cluster, "workflows", namespace=WORKFLOW_NAMESPACE)["items"]
