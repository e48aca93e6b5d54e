"""Reinvocation: a later mutating webhook changes the pod, the API server calls ours again.

The later webhook (a small stand-in here) puts the tag image back and adds an
env var, as a sidecar injector or an image rewriter might. Ours is
`reinvocationPolicy: IfNeeded` in the chart, so the API server calls it once
more; the stored pod must be pinned, with METRIC_HUB_SHA exactly once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.builders import JETSTREAM, argo_pod
from harness.controlplane import registration
from harness.controlplane.plane import ControlPlane
from harness.standins.base import Reply, Request, StandInServer, json_reply, serving
from tests.cluster.conftest import Deploy
from webhook import certs

RULE = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
LATER = "zz-later-webhook"  # configurations are called in name order: ours comes first


def _rewrite(request: Request) -> Reply:
    review = request.json()
    pod = review["request"]["object"]
    main = next(i for i, c in enumerate(pod["spec"]["containers"]) if c["name"] == "main")
    patch = [
        {"op": "replace", "path": f"/spec/containers/{main}/image", "value": f"{JETSTREAM}:latest"},
        {"op": "add", "path": "/metadata/labels/later-webhook", "value": "called"},
    ]
    return json_reply(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": review["request"]["uid"],
                "allowed": True,
                "patchType": "JSONPatch",
                "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
            },
        }
    )


@pytest.fixture
def later_webhook(control_plane: ControlPlane, tmp_path: Path) -> Iterator[StandInServer]:
    certs.write(certs.issue(["localhost"], ["127.0.0.1"]), tmp_path)
    with serving(_rewrite, (tmp_path / certs.CERT_FILE, tmp_path / certs.KEY_FILE)) as stand_in:
        yield stand_in
        registration.unregister(control_plane, LATER)


def _later_configuration(url: str, ca_pem: bytes, namespace: str) -> dict[str, object]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": LATER},
        "webhooks": [
            {
                "name": "later.example.org",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "reinvocationPolicy": "Never",
                "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_pem).decode()},
                "rules": [RULE],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            }
        ],
    }


def test_reinvoked_after_a_later_webhook_changes_the_pod(
    deploy: Deploy, later_webhook: StandInServer, tmp_path: Path
) -> None:
    deployment = deploy("reinvoke")
    ca_pem = (tmp_path / certs.CA_FILE).read_bytes()
    deployment.plane.apply(
        [_later_configuration(f"{later_webhook.url}/mutate", ca_pem, deployment.namespace)]
    )

    def later_called() -> bool:
        probe = deployment.create(argo_pod("my-experiment"), dry_run=True)
        labels = probe.body.get("metadata", {}).get("labels", {})
        return bool(labels.get("later-webhook") == "called")

    deployment.plane.wait_for(later_called, what="the later webhook to be called")
    answer = deployment.create(argo_pod("my-experiment"))
    assert answer.status == 201, answer.body
    assert answer.body["metadata"]["labels"]["later-webhook"] == "called"
    main = answer.container("main")
    assert main["image"].startswith(f"{JETSTREAM}@sha256:"), "ours was not called again"
    assert main["image"] == answer.annotations()["jetstream/pinned-image"]
    names = [e["name"] for e in main["env"]]
    assert names.count("METRIC_HUB_SHA") == 1
    assert answer.annotations()["jetstream/original-image"] == f"{JETSTREAM}:latest"
