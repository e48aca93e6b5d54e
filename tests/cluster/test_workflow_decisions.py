"""One decision per Workflow and experiment, through the real kube-apiserver.

The webhook records each experiment's first decision on its Workflow and
every later pod of that experiment in that Workflow reads it back: on this
replica, on another one, after a restart. Here the real google-cloud-bigquery
client reads a BigQuery stand-in whose `last_updated` label the test moves
(what `jetstream rerun` does before it submits), and the `gcr` source reads a
registry stand-in the test pushes a `breaking` image to. Workflows are
created through the API (no controller runs for them); their pods carry the
label and owner reference Argo gives its pods.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from harness.builders import JETSTREAM, argo_pod, utc
from harness.controlplane import argo, registration, release
from harness.controlplane.registration import RELEASE_NAMESPACE
from harness.dockerregistry import Pushed
from harness.standins.base import StandInServer, serving
from harness.standins.bigquery import BigQueryStandIn, bigquery_source, running_bigquery
from harness.standins.registry import RegistryStandIn
from tests.cluster.conftest import Deploy, Deployment
from webhook.core.datasets import Dataset
from webhook.core.workflow_record import decode, record_key
from webhook.kube.client import api_client
from webhook.kube.workflows import KubeWorkflows

NAME = "moz-fx-data-experiments/jetstream"
TOUCHED = "touched-experiment"  # a rerun moves its label to now
STEADY = "steady-experiment"  # nobody touches it
ENROLLED = utc("2023-02-01T00:00:00Z")
MOZANALYSIS = Dataset("moz-fx-data-experiments", "mozanalysis")


def millis(text: str) -> int:
    return int(utc(text).timestamp() * 1000)


@dataclass
class Tooling:
    """The registry and the enrollments the test moves while Workflows run."""

    registry: RegistryStandIn
    registry_stand_in: StandInServer
    bigquery: BigQueryStandIn
    images: dict[str, Pushed] = field(default_factory=dict)

    def touch(self, slug: str) -> int:
        """What `jetstream rerun` does just before it submits: last_updated = now."""
        now = int(time.time())
        table = "enrollments_" + slug.replace("-", "_")
        self.bigquery.tables[table]["labels"] = {"last_updated": str(now)}
        return now

    def push_breaking(self, uploaded_ms: int) -> Pushed:
        pushed = self.registry.add_image("breaking", "2026-01-01T00:00:00Z", ["breaking"])
        self.registry.uploaded_ms[pushed.digest] = uploaded_ms
        self.images["breaking"] = pushed
        return pushed

    def image(self, label: str) -> str:
        return f"{JETSTREAM}@{self.images[label].digest}"


@pytest.fixture(scope="module")
def tooling() -> Iterator[Tooling]:
    registry = RegistryStandIn(NAME, google=True)
    images = {
        "old": registry.add_image("old", "2023-01-01T00:00:00Z", ["v1"]),
        "new": registry.add_image("new", "2024-06-01T00:00:00Z", ["v2", "latest"]),
    }
    registry.uploaded_ms[images["old"].digest] = millis("2023-01-01T12:00:00Z")
    registry.uploaded_ms[images["new"].digest] = millis("2024-06-01T12:00:00Z")
    with serving(registry) as stand_in, running_bigquery() as bigquery:
        seconds = int(ENROLLED.timestamp())
        for slug in (TOUCHED, STEADY):
            bigquery.add("enrollments_" + slug.replace("-", "_"), ENROLLED, last_updated=seconds)
        yield Tooling(registry, stand_in, bigquery, images)


def settings(tooling: Tooling) -> dict[str, Any]:
    assert tooling.bigquery.stand_in is not None
    return {
        "images": [
            {
                "repository": JETSTREAM,
                "breakingTag": "breaking",
                "history": {
                    "type": "gcr",
                    "credentials": "anonymous",
                    "endpoint": tooling.registry_stand_in.url,
                },
            }
        ],
        "enrollments": bigquery_source(tooling.bigquery.stand_in.url, timeout=2),
        # The history refreshes every second, so a breaking push is seen at once;
        # the listing rarely: only the freshness rule makes a new Workflow see a touch.
        "cache": {
            "imageRefreshSeconds": 1,
            "enrollmentListRefreshSeconds": 3600,
            "prefetchEnrollments": True,
        },
    }


@pytest.fixture(scope="module")
def deployment(deploy: Deploy, tooling: Tooling) -> Deployment:
    return deploy("decisions", **settings(tooling))


def submit(deployment: Deployment) -> tuple[str, str]:
    """A Workflow no controller runs: only its identity and creation time matter here."""
    body = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "jetstream-"},
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "container": {"image": "busybox:1.36"}}],
        },
    }
    name = argo.submit(deployment.plane, deployment.namespace, body)
    uid = argo.workflow(deployment.plane, deployment.namespace, name)["metadata"]["uid"]
    return name, uid


def create(deployment: Deployment, slug: str, workflow: tuple[str, str] | None) -> str:
    """Create an analysis pod of `slug` in `workflow` (None: a Workflow that does not
    exist, so the pod is decided on its own); returns the image it was stored with."""
    name, uid = workflow or ("no-such-workflow", "no-such-uid")
    pod = argo_pod(slug, workflow=name, workflow_uid=uid)
    pod["metadata"]["name"] = f"{name}-{slug}"[:40]
    answer = deployment.create(copy.deepcopy(pod))
    assert answer.status == 201, answer.message
    return str(answer.container("main")["image"])


def recorded(deployment: Deployment, workflow: tuple[str, str], slug: str) -> dict[str, Any]:
    """The decision recorded on the Workflow (written in the background: polled for)."""
    key = record_key(MOZANALYSIS, slug)

    def annotation() -> str | None:
        body = argo.workflow(deployment.plane, deployment.namespace, workflow[0])
        value: str | None = (body["metadata"].get("annotations") or {}).get(key)
        return value

    raw = deployment.plane.wait_for(annotation, timeout=10, what=f"{key} on {workflow[0]}")
    parsed: dict[str, Any] = json.loads(raw)
    assert decode(raw).slug == slug
    return parsed


def test_a_rerun_adopts_new_tooling_and_a_running_workflow_keeps_its_own(
    deployment: Deployment, tooling: Tooling, tmp_path: Path
) -> None:
    old, new = tooling.image("old"), tooling.image("new")
    first = submit(deployment)
    assert create(deployment, TOUCHED, first) == old
    assert create(deployment, STEADY, first) == old
    stored = recorded(deployment, first, TOUCHED)
    assert stored["images"][JETSTREAM]["digest"] == tooling.images["old"].digest
    assert stored["firstPod"].startswith(first[0])

    # `jetstream rerun`: the label moves to now, then a new Workflow is submitted.
    touched_at = tooling.touch(TOUCHED)
    lists, gets = tooling.bigquery.lists(), tooling.bigquery.gets()
    second = submit(deployment)
    assert create(deployment, TOUCHED, second) == new, "the rerun's first pod: new at once"
    assert create(deployment, STEADY, second) == old
    assert tooling.bigquery.lists() - lists == 1, "one listing after the Workflow's creation"
    assert tooling.bigquery.gets() == gets, "and no per-experiment call"
    # The older Workflow's later pods (dates, retries) keep its recorded decision.
    assert create(deployment, TOUCHED, first) == old

    # A breaking release mid-run: new Workflows move, running ones do not.
    pushed_at = max(time.time(), touched_at + 1)  # after the touch: it moves TOUCHED too
    deployment.plane.wait_for(lambda: time.time() > pushed_at, what="the push's second")
    breaking = tooling.push_breaking(int(pushed_at * 1000))
    assert breaking.digest
    deployment.plane.wait_for(
        lambda: create(deployment, STEADY, None) == tooling.image("breaking"),
        timeout=30,
        what="the image history to show the breaking image (pods decided on their own)",
    )
    assert create(deployment, TOUCHED, first) == old
    assert create(deployment, STEADY, first) == old
    assert create(deployment, TOUCHED, second) == new
    third = submit(deployment)
    assert create(deployment, TOUCHED, third) == tooling.image("breaking")

    # Another replica (never saw these Workflows) and a restarted one agree.
    other_dir = tmp_path / "replica"
    other_dir.mkdir()
    other = release.start_webhook(
        other_dir,
        deployment.release,
        release.webhook_config(
            deployment.plane, other_dir, deployment.release, **settings(tooling)
        ),
    )
    try:
        _register(deployment, other)
        assert create(deployment, TOUCHED, first) == old
        assert create(deployment, TOUCHED, second) == new
        assert create(deployment, STEADY, second) == old
    finally:
        other.running.stop()
        deployment.register()
    deployment.webhook.running.stop()
    release.restart_webhook(deployment.webhook)
    assert create(deployment, TOUCHED, first) == old
    assert create(deployment, TOUCHED, second) == new
    assert create(deployment, TOUCHED, third) == tooling.image("breaking")


def _register(deployment: Deployment, webhook: release.Webhook) -> None:
    configuration = registration.configuration(
        deployment.release,
        webhook.mutate_url,
        webhook.ca_pem,
        deployment.plane.version,
        deployment.values,
    )
    registration.register(deployment.plane, configuration, deployment.namespace)


def test_of_writers_racing_for_one_experiment_exactly_one_wins(deployment: Deployment) -> None:
    """The real API server's JSON Patch `test` against null: absent passes, present fails.

    Twelve writers (the webhook's own identity, so RBAC is proven too) record
    different values for one key at once, on a Workflow without annotations and
    on one with: each gets back the single value that stands.
    """
    plane = deployment.plane
    kubeconfig = plane.kubeconfig_for(RELEASE_NAMESPACE, release.fullname(deployment.release))
    store = KubeWorkflows(api_client(kubeconfig), timeout=5)
    for annotated in (False, True):
        name, _ = submit(deployment)
        if annotated:
            _annotate(deployment, name, {"team": "experiments"})
        state = store.workflow(deployment.namespace, name)
        assert state is not None
        assert state.has_annotations is annotated
        key = record_key(MOZANALYSIS, "raced")
        writes = [(state, key, f"value-{n}") for n in range(12)]
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda write: store.record(*write), writes))
        (winner,) = set(answers)
        after = store.workflow(deployment.namespace, name)
        assert after is not None
        assert after.records == {key: winner}
        if annotated:
            notes = argo.workflow(plane, deployment.namespace, name)["metadata"]["annotations"]
            assert notes["team"] == "experiments"  # the others are kept
        # A batch: written in one patch, or (a key taken) each key on its own.
        batch = {record_key(MOZANALYSIS, f"batch-{n}"): f"b{n}" for n in range(3)}
        assert store.record_many(after, batch) == batch
        mixed = {key: "late", record_key(MOZANALYSIS, "batch-new"): "fresh"}
        assert store.record_many(after, mixed) == {
            key: winner,
            record_key(MOZANALYSIS, "batch-new"): "fresh",
        }


def _annotate(deployment: Deployment, name: str, notes: dict[str, str]) -> None:
    with deployment.plane.api() as api:
        k8s.CustomObjectsApi(api).patch_namespaced_custom_object(
            "argoproj.io", "v1alpha1", deployment.namespace, "workflows", name,
            {"metadata": {"annotations": notes}},
        )  # fmt: skip
