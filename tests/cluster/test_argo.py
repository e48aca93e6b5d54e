"""Argo's real workflow-controller creates the pods; the webhook pins them.

Each test has its own namespace with its own webhook (`deploy`) and its own
controller, so controller settings and webhook faults never cross. The
Workflow is `examples/argo-workflow.yaml`, the shape Jetstream runs daily; its
YAML never names a digest. Timings printed here (run with `-s`) are
measurements for the docs, never assertions.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from harness.builders import EXAMPLES, JETSTREAM, utc
from harness.controlplane import argo
from harness.controlplane.plane import ControlPlane
from harness.controlplane.release import restart_webhook
from harness.standins.base import json_reply
from harness.standins.bigquery import BigQueryStandIn, bigquery_source, running_bigquery
from tests.cluster.conftest import Deploy, Deployment
from tests.cluster.test_admission import (
    BREAKING_IMAGE,
    LATEST_IMAGE,
    NEWEST_SHA,
    ONBOARDING_SHA,
    ROLLOUT_IMAGE,
    ROLLOUT_SHA,
    WEBHOOK,
)
from webhook import certs

FIRST_SHA = "487a50e4259df919a05610786dd9fd7a1b106547"
# slug -> (pin reason, image digest, METRIC_HUB_SHA), from examples/static-data.yaml
EXPECTED = {
    "firefox-desktop-private-browsing-redesign-rollout": ("enrollment", ROLLOUT_IMAGE, ROLLOUT_SHA),
    "android-onboarding-notification-permission-v2": ("breaking", BREAKING_IMAGE, ONBOARDING_SHA),
    "my-experiment": ("breaking", BREAKING_IMAGE, FIRST_SHA),
    "brand-new-experiment": ("not-enrolled", LATEST_IMAGE, NEWEST_SHA),
}
BAD_PHASES = {"Failed", "Error"}

StartController = Callable[..., argo.Controller]


@pytest.fixture(scope="module")
def controller(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartController]:
    started: list[argo.Controller] = []
    folder = tmp_path_factory.mktemp("argo")

    def start(namespace: str, **env: str) -> argo.Controller:
        running = argo.start_controller(control_plane, namespace, folder / namespace, env)
        started.append(running)
        return running

    yield start
    for running in started:
        running.running.stop()


def jetstream_workflow(
    experiments: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load((EXAMPLES / "argo-workflow.yaml").read_text())
    if experiments is not None:
        [parameter] = [
            p for p in workflow["spec"]["arguments"]["parameters"] if p["name"] == "experiments"
        ]
        parameter["value"] = json.dumps(experiments)
    if labels:
        workflow["metadata"]["labels"].update(labels)
    return workflow


def slug_of(pod: dict[str, Any]) -> str:
    main = container(pod, "main")
    [flag] = [a for a in main["command"] + main.get("args", []) if "--experiment_slug=" in a]
    return str(flag.split("=", 1)[1])


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod["spec"]
    [found] = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name]
    return dict(found)


def metric_hub_sha(pod: dict[str, Any]) -> list[str]:
    env = container(pod, "main").get("env", [])
    return [e["value"] for e in env if e["name"] == "METRIC_HUB_SHA"]


def nodes(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    status = argo.workflow(plane, namespace, name).get("status", {})
    found: dict[str, Any] = status.get("nodes", {})
    return found


def failed_nodes(plane: ControlPlane, namespace: str, name: str) -> list[str]:
    return [
        f"{node['displayName']}: {node.get('message', '')}"
        for node in nodes(plane, namespace, name).values()
        if node.get("phase") in BAD_PHASES
    ]


def _first_pods(
    deploy: Deploy, controller: StartController, namespace: str, workflow: dict[str, Any]
) -> tuple[Deployment, str, list[dict[str, Any]]]:
    """A webhook and a controller for `namespace`; the Workflow submitted, its pods."""
    deployment = deploy(namespace)
    controller(deployment.namespace)
    name = argo.submit(deployment.plane, deployment.namespace, workflow)
    pods = argo.wait_for_pods(deployment.plane, deployment.namespace, name, len(EXPECTED))
    return deployment, name, pods


def test_every_pod_is_pinned_to_its_own_experiment(
    deploy: Deploy, controller: StartController
) -> None:
    deployment, name, pods = _first_pods(deploy, controller, "argo-pin", jetstream_workflow())
    plane = deployment.plane
    assert sorted(slug_of(pod) for pod in pods) == sorted(EXPECTED)
    for pod in pods:
        reason, digest, sha = EXPECTED[slug_of(pod)]
        main = container(pod, "main")
        assert main["image"] == f"{JETSTREAM}@{digest}", slug_of(pod)
        assert metric_hub_sha(pod) == [sha]
        assert pod["metadata"]["annotations"]["jetstream/pin-reason"] == reason
        assert main["command"][:2] == ["/var/run/argo/argoexec", "emissary"]  # Argo's wrapper
        assert main["resources"]["requests"]["memory"] == "1Gi"  # the podSpecPatch
        for argo_own in ("init", "wait"):
            untouched = container(pod, argo_own)
            assert untouched["image"] == argo.EXECUTOR
            assert "METRIC_HUB_SHA" not in {e["name"] for e in untouched.get("env", [])}
    assert [c["name"] for c in pods[0]["spec"]["containers"]] == ["wait", "main"]
    assert failed_nodes(plane, deployment.namespace, name) == []


def test_workflow_label_latest_pins_every_pod_to_the_newest(
    deploy: Deploy, controller: StartController
) -> None:
    labelled = jetstream_workflow(labels={"jetstream/pin": "latest"})  # argo submit -l
    deployment, name, pods = _first_pods(deploy, controller, "argo-latest", labelled)
    plane = deployment.plane
    for pod in pods:
        assert container(pod, "main")["image"] == f"{JETSTREAM}@{LATEST_IMAGE}"
        assert metric_hub_sha(pod) == [NEWEST_SHA]
        assert pod["metadata"]["annotations"]["jetstream/pin-reason"] == "latest"

    def events() -> list[dict[str, Any]]:
        listing = plane.kubectl(
            "get", "events", "-n", deployment.namespace, "-o", "json",
            "--field-selector", "involvedObject.kind=Workflow",
        ).stdout  # fmt: skip
        items = json.loads(listing)["items"]
        ours = [e for e in items if e["source"].get("component") == "jetstream-pin"]
        return ours if len(ours) >= len(EXPECTED) else []

    recorded = plane.wait_for(events, what="an Event per pod on the Workflow")
    assert {event["involvedObject"]["name"] for event in recorded} == {name}
    assert {event["reason"] for event in recorded} == {"PinnedLatest"}
    assert {pod["metadata"]["name"] for pod in pods} == {
        event["message"].split(":")[0].removeprefix("pod ") for event in recorded
    }


@pytest.fixture
def bigquery() -> Iterator[BigQueryStandIn]:
    with running_bigquery() as fake:
        fake.add("enrollments_my_experiment", utc("2023-01-01T00:00:00Z"))
        yield fake


def _per_slug(bigquery: BigQueryStandIn) -> dict[str, Any]:
    assert bigquery.stand_in is not None
    return {
        "enrollments": bigquery_source(bigquery.stand_in.url, timeout=1),
        "cache": {"prefetchEnrollments": False},
    }


ONE_EXPERIMENT = [{"slug": "my-experiment", "dates": ["2024-06-03"]}]


def test_backend_outage_delays_the_analysis_instead_of_failing_it(
    deploy: Deploy, controller: StartController, bigquery: BigQueryStandIn
) -> None:
    deployment = deploy("argo-outage", **_per_slug(bigquery))
    running = controller(deployment.namespace)
    plane, namespace = deployment.plane, deployment.namespace
    assert bigquery.stand_in is not None
    bigquery.stand_in.fault = json_reply({"error": {"code": 503, "message": "down"}}, 503)
    name = argo.submit(plane, namespace, jetstream_workflow(ONE_EXPERIMENT))
    plane.wait_for(
        lambda: _transient_errors(running, name), timeout=60, what="the controller's retry"
    )
    time.sleep(3)  # several retries while the backend is down
    assert argo.pods_of(plane, namespace, name) == []
    assert failed_nodes(plane, namespace, name) == []
    recovered = datetime.now(UTC)
    bigquery.stand_in.fault = None
    [pod] = argo.wait_for_pods(plane, namespace, name, 1, timeout=120)
    created = datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    assert container(pod, "main")["image"] == f"{JETSTREAM}@{BREAKING_IMAGE}"
    assert failed_nodes(plane, namespace, name) == []
    [line, *_] = _transient_errors(running, name)
    print(f"\ncontroller: {line}")
    print(f"pod created {(created - recovered).total_seconds():.1f} s after the backend recovered")
    assert "ServiceUnavailable" in line or "503" in line or "denied the request" in line


def _fail(plane: ControlPlane, namespace: str, pod: dict[str, Any]) -> None:
    """What a kubelet reports when the analysis exits 1 (none runs here)."""
    name = pod["metadata"]["name"]
    with plane.api() as api:
        k8s.CoreV1Api(api).patch_namespaced_pod_status(
            name,
            namespace,
            {"status": {"phase": "Failed", "message": "the analysis exited 1"}},
        )


def test_a_touched_experiment_moves_in_the_next_workflow_only(
    deploy: Deploy, controller: StartController
) -> None:
    """`jetstream rerun` moves the label and submits: that Workflow's pods run the new
    tooling; the older Workflow's retried pod keeps the tooling it started with."""
    with running_bigquery() as bigquery:
        assert bigquery.stand_in is not None
        slug = "touched-experiment"
        enrolled = utc("2024-05-30T02:00:00Z")
        bigquery.add("enrollments_touched_experiment", enrolled, int(enrolled.timestamp()))
        deployment = deploy(
            "argo-touched",
            enrollments=bigquery_source(bigquery.stand_in.url, timeout=2),
            cache={"prefetchEnrollments": True, "enrollmentListRefreshSeconds": 3600},
        )
        controller(deployment.namespace)
        plane, namespace = deployment.plane, deployment.namespace
        experiments = [{"slug": slug, "dates": ["2024-06-03"]}]
        old = argo.submit(plane, namespace, jetstream_workflow(experiments))
        [first] = argo.wait_for_pods(plane, namespace, old, 1)
        assert container(first, "main")["image"] == f"{JETSTREAM}@{ROLLOUT_IMAGE}"
        assert metric_hub_sha(first) == [ROLLOUT_SHA]

        bigquery.tables["enrollments_touched_experiment"]["labels"] = {
            "last_updated": str(int(time.time()))
        }
        rerun = argo.submit(plane, namespace, jetstream_workflow(experiments))
        [moved] = argo.wait_for_pods(plane, namespace, rerun, 1)
        assert container(moved, "main")["image"] == f"{JETSTREAM}@{LATEST_IMAGE}"
        assert metric_hub_sha(moved) == [NEWEST_SHA]

        _fail(plane, namespace, first)  # Argo retries it (retryStrategy: Always)
        pods = argo.wait_for_pods(plane, namespace, old, 2, timeout=120)
        [retried] = [p for p in pods if p["metadata"]["name"] != first["metadata"]["name"]]
        assert container(retried, "main")["image"] == f"{JETSTREAM}@{ROLLOUT_IMAGE}"
        assert metric_hub_sha(retried) == [ROLLOUT_SHA]
        assert retried["metadata"]["annotations"]["jetstream/pin-reason"] == "enrollment"


def _transient_errors(controller: argo.Controller, workflow: str) -> list[str]:
    lines = []
    for line in controller.log().splitlines():
        if '"Transient error"' in line and workflow in line and WEBHOOK in line:
            lines.append(line)
    return lines


def test_refusal_retrying_cannot_fix_fails_the_node_with_the_webhook_message(
    deploy: Deploy, controller: StartController
) -> None:
    deployment = deploy("argo-refused")
    controller(deployment.namespace)
    plane, namespace = deployment.plane, deployment.namespace
    labelled = jetstream_workflow(ONE_EXPERIMENT, labels={"jetstream/pin": "newest"})
    name = argo.submit(plane, namespace, labelled)
    failed = plane.wait_for(lambda: failed_nodes(plane, namespace, name), what="a failed node")
    print(f"\nnode: {failed[0]}")
    assert any(
        f'admission webhook "{WEBHOOK}" denied the request: jetstream-pin: label '
        f"jetstream/pin of Workflow {name} has the value 'newest'" in node
        for node in failed
    ), failed
    assert argo.pods_of(plane, namespace, name) == []


def test_webhook_refusing_connections_is_retried_by_default(
    deploy: Deploy, controller: StartController
) -> None:
    """Argo counts `connect: connection refused` as transient: a webhook that is down
    (no pod listening) delays the node; the pod is created once it is back."""
    deployment = deploy("argo-down")
    running = controller(deployment.namespace)
    deployment.webhook.running.stop()
    _waits_until_fixed(
        deployment,
        running,
        "connect: connection refused",
        lambda: restart_webhook(deployment.webhook),
    )


def _waits_until_fixed(
    deployment: Deployment, running: argo.Controller, cause: str, fix: Callable[[], None]
) -> None:
    """Submit while the webhook cannot be called: Argo retries (logging `cause`), no node
    fails, and once `fix` runs the pod is created and pinned."""
    plane, namespace = deployment.plane, deployment.namespace
    name = argo.submit(plane, namespace, jetstream_workflow(ONE_EXPERIMENT))
    [line, *_] = plane.wait_for(lambda: _transient_errors(running, name), what="a retry")
    assert cause in line
    time.sleep(3)  # several retries
    assert failed_nodes(plane, namespace, name) == []
    assert argo.pods_of(plane, namespace, name) == []
    fix()
    [pod] = argo.wait_for_pods(plane, namespace, name, 1, timeout=120)
    assert container(pod, "main")["image"] == f"{JETSTREAM}@{BREAKING_IMAGE}"
    assert failed_nodes(plane, namespace, name) == []


OTHER_CA = certs.issue(["localhost"]).ca_pem  # a caBundle the server's certificate fails


def test_webhook_failing_tls_errors_the_node_by_default(
    deploy: Deploy, controller: StartController
) -> None:
    """Any other failed call (here a caBundle that does not match, as after a botched
    rotation) is not transient for Argo: the node errors."""
    deployment = deploy("argo-bad-ca")
    controller(deployment.namespace)
    deployment.register(ca_pem=OTHER_CA)
    plane, namespace = deployment.plane, deployment.namespace
    name = argo.submit(plane, namespace, jetstream_workflow(ONE_EXPERIMENT))
    failed = plane.wait_for(lambda: failed_nodes(plane, namespace, name), what="a failed node")
    print(f"\nnode: {failed[0]}")
    assert any(
        f'failed calling webhook "{WEBHOOK}"' in node and "x509" in node for node in failed
    ), failed


def test_transient_error_pattern_retries_every_failed_call(
    deploy: Deploy, controller: StartController
) -> None:
    """docs/operating.md's advice: TRANSIENT_ERROR_PATTERN=failed calling webhook."""
    deployment = deploy("argo-bad-ca-retry")
    running = controller(deployment.namespace, TRANSIENT_ERROR_PATTERN="failed calling webhook")
    deployment.register(ca_pem=OTHER_CA)
    _waits_until_fixed(deployment, running, "x509", deployment.register)  # the right caBundle


BURST = 200


@pytest.fixture
def many_enrolled() -> Iterator[BigQueryStandIn]:
    with running_bigquery() as fake:
        for number in range(BURST):
            fake.add(f"enrollments_burst_{number:03d}", utc("2024-05-30T02:00:00Z"))
        yield fake


def _time_to_pods(
    plane: ControlPlane, namespace: str, workflow: dict[str, Any]
) -> tuple[float, list[dict[str, Any]]]:
    """Seconds from submit to the last pod stored, and the pods."""
    started = time.monotonic()
    name = argo.submit(plane, namespace, copy.deepcopy(workflow))
    pods = argo.wait_for_pods(plane, namespace, name, BURST, timeout=300)
    return time.monotonic() - started, pods


def test_burst_of_200_experiments(
    deploy: Deploy,
    controller: StartController,
    many_enrolled: BigQueryStandIn,
) -> None:
    assert many_enrolled.stand_in is not None
    deployment = deploy(
        "argo-burst",
        enrollments=bigquery_source(many_enrolled.stand_in.url, timeout=2),
        cache={"prefetchEnrollments": True},
    )
    controller(deployment.namespace)
    plane = deployment.plane
    bare = plane.namespace("argo-burst-bare")  # no webhook registered for it
    controller(bare)
    experiments = [{"slug": f"burst-{n:03d}", "dates": ["2024-06-03"]} for n in range(BURST)]
    workflow = jetstream_workflow(experiments)
    workflow["spec"].pop("parallelism")
    gets_before, lists_before = many_enrolled.gets(), many_enrolled.lists()
    unpinned, _ = _time_to_pods(plane, bare, workflow)
    pinned, pods = _time_to_pods(plane, deployment.namespace, workflow)
    assert len(pods) == BURST
    assert all(container(pod, "main")["image"] == f"{JETSTREAM}@{ROLLOUT_IMAGE}" for pod in pods)
    assert many_enrolled.gets() == gets_before, "the prefetch answers every slug"
    # One listing begun after the Workflow's creation serves all 200 first decisions
    # (two when the background refresh happened to run at that moment).
    assert many_enrolled.lists() - lists_before <= 2
    name = pods[0]["metadata"]["labels"]["workflows.argoproj.io/workflow"]

    def recorded() -> int:
        notes = argo.workflow(plane, deployment.namespace, name)["metadata"].get("annotations")
        return sum(key.startswith("jetstream/decision-") for key in notes or {})

    plane.wait_for(lambda: recorded() == BURST, timeout=30, what=f"{BURST} decisions recorded")
    print(
        f"\n{BURST} pods: {pinned:.1f} s with the webhook, {unpinned:.1f} s without "
        f"(ratio {pinned / unpinned:.2f}); BigQuery tables.get calls: "
        f"{many_enrolled.gets() - gets_before}, tables.list calls: {many_enrolled.lists()}"
    )
