"""Every admission claim, made by the real kube-apiserver calling the real webhook.

The API server sends the AdmissionReview, applies the JSONPatch, stores the
pod in etcd and answers the client; these tests read what the client gets and
what is stored, never the webhook's own answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from harness.builders import JETSTREAM, argo_pod, utc
from harness.controlplane.client import fixture_pod, read_pod
from harness.controlplane.plane import ControlPlane
from harness.standins.base import Reply, json_reply
from harness.standins.bigquery import BigQueryStandIn, bigquery_source, running_bigquery
from tests.cluster.conftest import Deploy, Deployment

WEBHOOK = "pods.jetstream-pin.mozilla.org"
EMISSARY = "01-create-emissary-v3.6.json"
LABEL_SLUG = "02-create-label-slug-v3.5.json"
# examples/static-data.yaml, as the README's "Try it" section explains them.
ROLLOUT_IMAGE = "sha256:4bba4eebe859c802badf55f8a2bc7015e7009d574a169febeeb92ac2fd622073"
ROLLOUT_SHA = "1fd6c5091894d06c3005187ad87d8f00b2662780"
BREAKING_IMAGE = "sha256:c71233c8ade3eb276062ed6d399a0770f4499d03947daca2ead8a21c5e890fd3"
ONBOARDING_SHA = "6f1210910bc73f58eb0aaf165c61a41ae9ad1233"
LATEST_IMAGE = "sha256:e641342ebd290d3bd345c5b0029f04b1d9a0d7e560b0ef8680b4e7ed2c1737ab"
NEWEST_SHA = "2641580544262ec2cba07a72971048d5984a024f"


@pytest.fixture(scope="module")
def pinning(deploy: Deploy) -> Deployment:
    return deploy("pin-enforce")


@pytest.mark.parametrize(
    ("fixture", "reason", "digest", "sha"),
    [
        (EMISSARY, "enrollment", ROLLOUT_IMAGE, ROLLOUT_SHA),
        (LABEL_SLUG, "breaking", BREAKING_IMAGE, ONBOARDING_SHA),
    ],
)
def test_argo_pod_is_stored_pinned(
    pinning: Deployment, fixture: str, reason: str, digest: str, sha: str
) -> None:
    pod = fixture_pod(fixture, pinning.namespace)
    answer = pinning.create(pod, named=True)
    assert answer.status == 201, answer.body
    stored = read_pod(pinning.plane, pinning.namespace, pod["metadata"]["name"])
    assert stored is not None
    containers = {c["name"]: c for c in stored["spec"]["containers"]}
    assert containers["main"]["image"] == f"{JETSTREAM}@{digest}"
    assert containers["wait"]["image"] == pod["spec"]["containers"][0]["image"]
    assert containers["wait"] == _without_server_fields(containers["wait"], pod, "wait")
    env = [e for e in containers["main"]["env"] if e["name"] == "METRIC_HUB_SHA"]
    assert env == [{"name": "METRIC_HUB_SHA", "value": sha}]
    notes = stored["metadata"]["annotations"]
    assert notes["jetstream/pinned-image"] == f"{JETSTREAM}@{digest}"
    assert notes["jetstream/original-image"] == f"{JETSTREAM}:latest"
    assert notes["jetstream/metric-hub-sha"] == sha
    assert notes["jetstream/pin-reason"] == reason
    assert notes["jetstream/enrolled-at"].endswith("Z")
    # Argo's own annotations survive the patch.
    assert (
        notes["workflows.argoproj.io/node-id"]
        == pod["metadata"]["annotations"]["workflows.argoproj.io/node-id"]
    )


def _without_server_fields(
    stored: dict[str, Any], pod: dict[str, Any], name: str
) -> dict[str, Any]:
    """The container as sent, plus only what the API server's defaulting adds."""
    [sent] = [c for c in pod["spec"]["containers"] if c["name"] == name]
    return {**stored, **{k: v for k, v in sent.items() if k != "volumeMounts"}}


def test_env_is_added_where_the_container_had_none(pinning: Deployment) -> None:
    pod = argo_pod("my-experiment")
    assert "env" not in pod["spec"]["containers"][1]
    answer = pinning.create(pod)
    assert answer.status == 201, answer.body
    assert answer.env("main") == {"METRIC_HUB_SHA": "487a50e4259df919a05610786dd9fd7a1b106547"}
    assert answer.container("wait").get("env") is None


def test_override_warning_reaches_kubectl(pinning: Deployment) -> None:
    pod = argo_pod("long-running-study", labels={"jetstream/pin": "latest"})
    pod["metadata"]["name"] = "override-latest"
    pod["metadata"]["namespace"] = pinning.namespace
    result = pinning.plane.kubectl("create", "-f", "-", input_text=json.dumps(pod))
    assert (
        "Warning: jetstream-pin: long-running-study pinned to latest by pod label jetstream/pin"
        in result.stderr
    )
    stored = read_pod(pinning.plane, pinning.namespace, "override-latest")
    assert stored is not None
    assert stored["spec"]["containers"][1]["image"] == f"{JETSTREAM}@{LATEST_IMAGE}"
    assert stored["metadata"]["annotations"]["jetstream/pin-reason"] == "latest"


def test_audit_log_holds_the_audit_annotations_under_the_webhook_name(
    pinning: Deployment,
) -> None:
    pod = argo_pod("my-experiment")
    pod["metadata"]["name"] = "audited-pod"
    assert pinning.create(pod, named=True).status == 201

    def creation() -> dict[str, Any] | None:
        for event in pinning.plane.audit_events():
            target = event.get("objectRef", {})
            if (
                event["verb"] == "create"
                and target.get("resource") == "pods"
                and target.get("namespace") == pinning.namespace
                and target.get("name") == "audited-pod"
                and event["stage"] == "ResponseComplete"
            ):
                return dict(event)
        return None

    event = pinning.plane.wait_for(creation, what="the pod's audit event")
    notes = event["annotations"]
    assert notes[f"{WEBHOOK}/slug"] == "my-experiment"
    assert notes[f"{WEBHOOK}/pin-reason"] == "breaking"  # enrolled before the breaking image
    assert notes[f"{WEBHOOK}/pinned-image"].startswith(f"{JETSTREAM}@sha256:")
    assert notes[f"{WEBHOOK}/enrolled-at"] == "2023-01-01T00:00:00Z"
    # The API server's own record of the mutation, at Metadata level.
    mutations = [json.loads(v) for k, v in notes.items() if k.startswith("mutation.webhook")]
    assert {"configuration": pinning.configuration_name, "webhook": WEBHOOK,
            "mutated": True}.items() <= mutations[0].items()  # fmt: skip


def _workflow(plane: ControlPlane, namespace: str, name: str, labels: dict[str, str]) -> str:
    with plane.api() as api:
        created: Any = k8s.CustomObjectsApi(api).create_namespaced_custom_object(
            "argoproj.io", "v1alpha1", namespace, "workflows",
            {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
             "metadata": {"name": name, "labels": labels},
             "spec": {"entrypoint": "main",
                      "templates": [{"name": "main", "container": {"image": "busybox"}}]}},
        )  # fmt: skip
    uid: str = created["metadata"]["uid"]
    return uid


def _events(plane: ControlPlane, namespace: str, workflow: str) -> list[Any]:
    with plane.api() as api:
        listing = k8s.CoreV1Api(api).list_namespaced_event(
            namespace, field_selector=f"involvedObject.kind=Workflow,involvedObject.name={workflow}"
        )
    return list(listing.items)


def test_dry_run_gets_the_same_answer_and_stores_nothing(pinning: Deployment) -> None:
    plane = pinning.plane
    _workflow(plane, pinning.namespace, "jetstream-abcde", {})
    rehearsal = argo_pod("my-experiment")
    rehearsal["metadata"]["name"] = "dry-run-pod"
    dry = pinning.create(rehearsal, dry_run=True, named=True)
    assert dry.status == 201, dry.body
    assert read_pod(plane, pinning.namespace, "dry-run-pod") is None
    real_pod = argo_pod("my-experiment")
    real_pod["metadata"]["name"] = "real-pod"
    real = pinning.create(real_pod, named=True)
    assert real.status == 201
    assert dry.container("main")["image"] == real.container("main")["image"]
    assert dry.env("main") == real.env("main")
    assert dry.annotations() == real.annotations()
    # One writer thread sends Events in order: once the real pod's is there, a
    # dry run's would be too.
    events = plane.wait_for(
        lambda: _events(plane, pinning.namespace, "jetstream-abcde"), what="an Event"
    )
    messages = [event.message for event in events]
    assert any("pod real-pod:" in message for message in messages), messages
    assert not any("dry-run-pod" in message for message in messages), messages


@pytest.fixture
def bigquery() -> Iterator[BigQueryStandIn]:
    with running_bigquery() as fake:
        fake.add("enrollments_enrolled_experiment", utc("2024-05-30T02:00:00Z"))
        yield fake


def _failing(bigquery: BigQueryStandIn) -> None:
    assert bigquery.stand_in is not None
    bigquery.stand_in.fault = json_reply({"error": {"code": 500, "message": "backend"}}, 500)


def _enrollments(bigquery: BigQueryStandIn, timeout: float = 1) -> dict[str, Any]:
    """Per-slug lookups only (no listing prefetch), so a fault shows on the next pod."""
    assert bigquery.stand_in is not None
    return {
        "enrollments": bigquery_source(bigquery.stand_in.url, timeout=timeout),
        "cache": {"prefetchEnrollments": False},
    }


def test_backend_failure_reaches_the_client_as_503(
    deploy: Deploy, bigquery: BigQueryStandIn
) -> None:
    deployment = deploy("fail-deny", **_enrollments(bigquery))
    _failing(bigquery)
    answer = deployment.create(argo_pod("enrolled-experiment"), named=True)
    assert answer.status == 503
    assert answer.reason == "ServiceUnavailable"
    assert answer.message.startswith(
        f'admission webhook "{WEBHOOK}" denied the request: '
        "jetstream-pin: cannot pin experiment 'enrolled-experiment': bigquery"
    ), answer.message
    assert "the pod creation can be retried" in answer.message
    assert read_pod(deployment.plane, deployment.namespace, "jetstream-abcde-1") is None


@pytest.mark.parametrize(
    ("labels", "annotations", "code", "words"),
    [
        ({"jetstream/pin": "not-a-pin"}, None, 400, "accepted: 'latest' or a sha256 digest"),
        ({"jetstream/pin": "abc"}, None, 400, "12 to 63 lowercase hex"),
        ({}, {"jetstream/pin-digest": "sha256:" + "0" * 64}, 422, "not an image in the registry"),
    ],
)
def test_refusals_retrying_cannot_fix_say_what_to_change(
    pinning: Deployment,
    labels: dict[str, str],
    annotations: dict[str, str] | None,
    code: int,
    words: str,
) -> None:
    answer = pinning.create(argo_pod("my-experiment", labels=labels, annotations=annotations))
    assert answer.status == code, answer.body
    assert answer.message.startswith(f'admission webhook "{WEBHOOK}" denied the request:')
    assert words in answer.message


def test_on_error_allow_stores_the_pod_unpinned_with_the_error(
    deploy: Deploy, bigquery: BigQueryStandIn
) -> None:
    deployment = deploy("fail-allow", onError="allow", **_enrollments(bigquery))
    _failing(bigquery)
    answer = deployment.create(argo_pod("enrolled-experiment"))
    assert answer.status == 201, answer.body
    assert answer.container("main")["image"] == f"{JETSTREAM}:latest"
    assert "bigquery" in answer.annotations()["jetstream/pin-error"]
    assert any("admitted unpinned" in warning for warning in answer.warnings), answer.warnings


def test_audit_mode_stores_the_pod_unchanged(deploy: Deploy) -> None:
    deployment = deploy("audit", mode="audit")
    answer = deployment.create(argo_pod("my-experiment"))
    assert answer.status == 201, answer.body
    assert answer.container("main")["image"] == f"{JETSTREAM}:latest"
    assert "jetstream/pin-reason" not in answer.annotations()
    assert "METRIC_HUB_SHA" not in answer.env("main")
    assert any(w.startswith("jetstream-pin audit mode: would pin") for w in answer.warnings)


def test_unreachable_webhook_with_failure_policy_fail(deploy: Deploy) -> None:
    deployment = deploy("down-fail")
    deployment.webhook.running.stop()
    answer = deployment.create(argo_pod("my-experiment"))
    port = deployment.webhook.config["server"]["port"]
    assert answer.status == 500
    assert answer.reason == "InternalError"
    assert answer.message == (
        f'Internal error occurred: failed calling webhook "{WEBHOOK}": failed to call webhook: '
        f'Post "https://127.0.0.1:{port}/mutate?timeout=10s": '
        f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    )


def test_unreachable_webhook_with_failure_policy_ignore(deploy: Deploy) -> None:
    deployment = deploy("down-ignore", chart={"webhook": {"failurePolicy": "Ignore"}})
    deployment.webhook.running.stop()
    answer = deployment.create(argo_pod("my-experiment"))
    assert answer.status == 201, answer.body
    assert answer.container("main")["image"] == f"{JETSTREAM}:latest"
    assert "jetstream/pin-reason" not in answer.annotations()


def test_match_conditions_compiled_and_applied(pinning: Deployment) -> None:
    """The chart's CEL sends only pods running a configured image."""
    other = argo_pod("my-experiment", image_ref="busybox:1.36", labels={"jetstream/pin": "x"})
    other["metadata"]["name"] = "not-jetstream"
    assert pinning.create(other).status == 201  # never sent: an invalid pin is not refused
    ours = argo_pod("my-experiment", labels={"jetstream/pin": "x"})
    assert pinning.create(ours).status == 400


@pytest.mark.parametrize(
    "fault",
    [
        Reply(200, {"kind": "bigquery#table"}, {"Content-Type": "application/json"}, delay=15.0),
        Reply(200, b"x" * 400, {"Content-Type": "application/json"}, drip=1.0),  # 10 B/s
    ],
    ids=["slow", "dripping"],
)
def test_backend_slower_than_the_api_server_deadline_is_a_503_not_a_timeout(
    deploy: Deploy, bigquery: BigQueryStandIn, fault: Reply
) -> None:
    """The webhook's own deadline (8 s, the chart's 0.8 x timeoutSeconds) answers before
    the API server's 10 s: the client gets the designed 503, never "failed calling webhook"."""
    # The source's own timeout (30 s) is past the API server's: only the deadline can answer.
    name = f"deadline-{'slow' if fault.delay else 'drip'}"
    deployment = deploy(name, **_enrollments(bigquery, timeout=30))
    assert bigquery.stand_in is not None
    bigquery.stand_in.fault = fault
    started = time.monotonic()
    answer = deployment.create(argo_pod("enrolled-experiment"))
    took = time.monotonic() - started
    bigquery.stand_in.fault = None
    assert answer.status == 503, answer.message
    assert answer.reason == "ServiceUnavailable"
    assert "failed calling webhook" not in answer.message
    assert "bigquery" in answer.message
    assert 7.5 < took < 10, f"answered after {took:.1f} s, not at the 8 s deadline"
    print(f"\n{'slow' if fault.delay else 'dripping'} BigQuery: 503 after {took:.2f} s")
