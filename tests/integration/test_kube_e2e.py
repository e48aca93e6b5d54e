"""Override precedence and Events end to end: the real server, the real client, the stand-in API.

pod label > Workflow label > overrides ConfigMap > enrollment, each read the
way production reads it (`jetstream-pin serve` under gunicorn, the
`kubernetes` client over HTTPS to the API server stand-in).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.builders import EXAMPLES, JETSTREAM, argo_pod, review_of
from harness.servers import Server, example_config, running_server
from harness.standins.apiserver import RunningApiServer, api_server
from tests.integration.test_https import (
    DIGEST_2023_03,
    DIGEST_2024_05,
    DIGEST_BREAKING,
    DIGEST_NEWEST,
    SHA_NEWEST,
    round_trip,
)

NAMESPACE = "jetstream-pin"
CONFIG_MAP = "jetstream-pin-overrides"
ENROLLED = "android-onboarding-notification-permission-v2"  # enrolled before a breaking release


@dataclass
class Setup:
    api: RunningApiServer
    server: Server


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir = Path(tmp_path_factory.mktemp("kube-e2e"))
    with api_server(workdir) as api:
        cluster = api.cluster
        cluster.add_workflow("argo", "wf-latest", {"jetstream/pin": "latest"})
        cluster.add_workflow("argo", "wf-plain", {"app": "jetstream"})
        cluster.add_workflow("argo", "wf-bad", {"jetstream/pin": "newest"})
        cluster.failing["/workflows/wf-broken"] = 500
        cluster.add_config_map(NAMESPACE, CONFIG_MAP, {"my-experiment": DIGEST_2023_03[7:19]})
        data = yaml.safe_load((EXAMPLES / "static-data.yaml").read_text())
        data.pop("overrides", None)  # slug pins live in the ConfigMap here
        (workdir / "static.yaml").write_text(yaml.safe_dump(data))
        config = example_config(
            workdir,
            static=str(workdir / "static.yaml"),
            kubernetes={
                "kubeconfig": str(api.kubeconfig),
                "overridesConfigMap": {"name": CONFIG_MAP, "namespace": NAMESPACE},
            },
        )
        config["server"]["workers"] = 1  # one Event queue: Events arrive in admission order
        with running_server(workdir / "server", config) as server:
            yield Setup(api, server)


def _pod(slug: str, workflow: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    pod = argo_pod(slug, workflow=workflow, labels=labels)
    suffix = "-own-pin" if labels else ""
    pod["metadata"]["name"] = f"{workflow}-{slug}"[:50] + suffix
    pod["metadata"]["ownerReferences"] = [
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": workflow,
         "uid": f"uid-{workflow}"},
    ]  # fmt: skip
    return pod


@pytest.mark.parametrize(
    ("pod", "image", "reason", "origin"),
    [
        (
            _pod("my-experiment", "wf-latest", {"jetstream/pin": DIGEST_2024_05[7:20]}),
            DIGEST_2024_05, "override", "pod label jetstream/pin",
        ),
        (_pod("my-experiment", "wf-latest"), DIGEST_NEWEST, "latest", "Workflow wf-latest"),
        (_pod("my-experiment", "wf-plain"), DIGEST_2023_03, "override", "overrides entry"),
        (_pod(ENROLLED, "wf-plain"), DIGEST_BREAKING, "breaking", None),
    ],
    ids=["pod label beats all", "Workflow label beats ConfigMap", "ConfigMap", "enrollment"],
)  # fmt: skip
def test_precedence(
    setup: Setup, pod: dict[str, Any], image: str, reason: str, origin: str | None
) -> None:
    response, after = round_trip(setup.server, review_of(pod))
    main = after["spec"]["containers"][1]
    assert main["image"] == f"{JETSTREAM}@{image}"
    assert after["metadata"]["annotations"]["jetstream/pin-reason"] == reason
    warnings = response["response"].get("warnings", [])
    if origin is None:
        assert warnings == []
    else:
        assert origin in warnings[0]
    if reason == "latest":
        assert {"name": "METRIC_HUB_SHA", "value": SHA_NEWEST} in main["env"]
    workflow = pod["metadata"]["labels"]["workflows.argoproj.io/workflow"]
    event = _wait_for_event(setup.api, pod["metadata"]["name"])
    assert event["involvedObject"]["name"] == workflow
    assert event["involvedObject"]["uid"] == f"uid-{workflow}"
    assert event["reason"] == "Pinned" + reason.capitalize()
    assert image in event["message"]


def test_a_bad_workflow_label_is_refused_with_the_accepted_forms(setup: Setup) -> None:
    body = setup.server.post_review(review_of(_pod("my-experiment", "wf-bad"))).json()
    status = body["response"]["status"]
    assert (body["response"]["allowed"], status["code"]) == (False, 400)
    assert "label jetstream/pin of Workflow wf-bad has the value 'newest'" in status["message"]
    assert "accepted: 'latest' or a sha256 digest prefix" in status["message"]


def test_an_api_failure_follows_the_failure_policy(setup: Setup) -> None:
    body = setup.server.post_review(review_of(_pod("my-experiment", "wf-broken"))).json()
    status = body["response"]["status"]
    assert body["response"]["allowed"] is False
    assert (status["code"], status["reason"]) == (503, "ServiceUnavailable")
    assert (
        "Kubernetes API (Workflows) failed: HTTP 500 from the Kubernetes API" in status["message"]
    )
    assert "my-experiment" in status["message"]


def test_dry_run_records_no_event(setup: Setup) -> None:
    dry = review_of(_pod("my-experiment", "wf-dry-run"))
    dry["request"]["dryRun"] = True
    real = review_of(_pod("my-experiment", "wf-after-dry-run"))
    assert setup.server.post_review(dry).json()["response"]["allowed"]
    assert setup.server.post_review(copy.deepcopy(real)).json()["response"]["allowed"]
    _wait_for_event(setup.api, "wf-after-dry-run-my-experiment")  # queued after the dry run
    names = [e["involvedObject"]["name"] for e in setup.api.cluster.events]
    assert "wf-dry-run" not in names


def _wait_for_event(api: RunningApiServer, pod_name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for event in list(api.cluster.events):
            if event["message"].startswith(f"pod {pod_name}:"):
                return event
        time.sleep(0.05)
    raise AssertionError(f"no Event for pod {pod_name}; got {api.cluster.events}")
