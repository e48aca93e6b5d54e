"""The real `kubernetes` client against an HTTPS stand-in of the API server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.builders import JETSTREAM, argo_pod, digest, review_of, utc
from harness.standins.apiserver import TOKEN, RunningApiServer, api_server, write_kubeconfig
from tests.support.fakes import ManualClock
from tests.support.kube import validate
from webhook import certs
from webhook.config import ConfigMapRef
from webhook.core.decision import Decision
from webhook.core.pinning import Image, ImageChoice, ImageRule, PinLatest, Reason
from webhook.core.pods import read_pod
from webhook.core.review import parse_review
from webhook.kube.client import api_client
from webhook.kube.events import EventRecorder
from webhook.kube.overrides import KubeOverrides
from webhook.sources import SourceError
from webhook.sources.cached import CachedOverrides

OVERRIDES = ConfigMapRef("jetstream-pin-overrides", "jetstream-pin")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[RunningApiServer]:
    with api_server(tmp_path) as server:
        yield server


def overrides(api: RunningApiServer, clock: ManualClock | None = None) -> CachedOverrides:
    """The overrides as the wiring builds them: the API reader behind its cache."""
    reader = KubeOverrides(api_client(api.kubeconfig), config_map=OVERRIDES, timeout=1.0)
    return CachedOverrides(reader, 10.0, clock or ManualClock())


def test_workflow_label_is_read_with_the_token_and_cached(api: RunningApiServer) -> None:
    api.cluster.add_workflow("argo", "jetstream-abcde", {"jetstream/pin": "latest"})
    api.cluster.add_workflow("argo", "plain", {"other": "x"})
    clock = ManualClock()
    source = overrides(api, clock)
    assert source.workflow_pin("argo", "jetstream-abcde") == "latest"
    assert source.workflow_pin("argo", "jetstream-abcde") == "latest"
    assert source.workflow_pin("argo", "plain") is None
    assert source.workflow_pin("argo", "no-such-workflow") is None  # missing: no override
    assert source.workflow_pin("argo", "no-such-workflow") is None  # ... and cached
    calls = api.stand_in.calls("/apis/argoproj.io/v1alpha1/namespaces/argo/workflows/")
    assert [c.path.rsplit("/", 1)[1] for c in calls] == [
        "jetstream-abcde",
        "plain",
        "no-such-workflow",
    ]
    assert calls[0].headers["authorization"] == f"Bearer {TOKEN}"
    api.cluster.workflows[("argo", "jetstream-abcde")]["metadata"]["labels"] = {}
    assert source.workflow_pin("argo", "jetstream-abcde") == "latest"  # within the TTL
    clock.now += 10.5
    assert source.workflow_pin("argo", "jetstream-abcde") is None


def test_config_map_entries(api: RunningApiServer) -> None:
    api.cluster.add_config_map(
        "jetstream-pin", "jetstream-pin-overrides",
        {"my-experiment": "latest", "other": "4bba4eebe859c802\n"},
    )  # fmt: skip
    clock = ManualClock()
    source = overrides(api, clock)
    assert source.slug_pin("my-experiment") == "latest"
    assert source.slug_pin("other") == "4bba4eebe859c802"
    assert source.slug_pin("unknown") is None
    assert sorted(source.pinned_slugs()) == ["my-experiment", "other"]  # what the report matches
    assert len(api.stand_in.calls("/api/v1/namespaces/jetstream-pin/configmaps/")) == 1
    del api.cluster.objects[("configmaps", "jetstream-pin", "jetstream-pin-overrides")]
    clock.now += 11
    assert source.slug_pin("my-experiment") is None  # ConfigMap gone: no override
    assert tuple(source.pinned_slugs()) == ()


def test_without_a_config_map_or_workflow_labels_nothing_is_asked(api: RunningApiServer) -> None:
    reader = KubeOverrides(api_client(api.kubeconfig), workflow_labels=False, config_map=None)
    source = CachedOverrides(reader)
    assert source.workflow_pin("argo", "wf") is None
    assert source.slug_pin("my-experiment") is None
    assert tuple(source.pinned_slugs()) == ()
    assert api.stand_in.calls() == []


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (403, "HTTP 403 from the Kubernetes API at https://127.0.0.1:.*not authorized"),
        (500, "HTTP 500 from the Kubernetes API at https://127.0.0.1:"),
        (429, "rate limited"),
    ],
)
def test_api_errors_are_source_errors_without_secrets(
    api: RunningApiServer, fault: int, cause: str
) -> None:
    api.cluster.failing["/workflows/"] = fault
    api.cluster.failing["/configmaps/"] = fault
    source = overrides(api)
    with pytest.raises(SourceError, match=cause) as workflow_error:
        source.workflow_pin("argo", "wf")
    with pytest.raises(SourceError, match=cause) as config_map_error:
        source.slug_pin("my-experiment")
    assert workflow_error.value.source == "Kubernetes API (Workflows)"
    assert (
        config_map_error.value.source == "overrides ConfigMap jetstream-pin/jetstream-pin-overrides"
    )
    for error in (workflow_error.value, config_map_error.value):
        assert TOKEN not in str(error)
        assert "failing on purpose" not in str(error)


def test_errors_are_not_cached(api: RunningApiServer) -> None:
    api.cluster.add_workflow("argo", "wf", {"jetstream/pin": "latest"})
    api.cluster.failing["/workflows/"] = 503
    source = overrides(api)
    with pytest.raises(SourceError):
        source.workflow_pin("argo", "wf")
    del api.cluster.failing["/workflows/"]
    assert source.workflow_pin("argo", "wf") == "latest"


def test_untrusted_api_server_certificate_is_refused(api: RunningApiServer, tmp_path: Path) -> None:
    other_ca = certs.issue(["localhost"], ["127.0.0.1"]).ca_pem
    kubeconfig = write_kubeconfig(tmp_path / "wrong-ca.yaml", api.stand_in.url, other_ca)
    source = KubeOverrides(api_client(kubeconfig), timeout=1.0)
    with pytest.raises(SourceError, match="TLS handshake with the Kubernetes API"):
        source.workflow_pin("argo", "wf")
    assert api.stand_in.calls() == []


def test_concurrent_misses_share_one_call(api: RunningApiServer) -> None:
    api.cluster.add_workflow("argo", "wf", {"jetstream/pin": "latest"})
    release = threading.Event()
    original = api.stand_in.route

    def slow(request):  # type: ignore[no-untyped-def]
        release.wait(5)
        return original(request)

    api.stand_in.route = slow
    source = overrides(api)
    answers: list[str | None] = []
    threads = [
        threading.Thread(target=lambda: answers.append(source.workflow_pin("argo", "wf")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    while not api.stand_in.calls():
        threading.Event().wait(0.01)
    release.set()
    for thread in threads:
        thread.join(10)
    assert answers == ["latest"] * 8
    assert len(api.stand_in.calls()) == 1


def _decision() -> Decision:
    chosen = Image(digest("img"), utc("2024-05-01T00:00:00Z"), frozenset({"latest"}))
    return Decision(
        slug="my-experiment",
        reason=Reason.LATEST,
        enrolled_at=None,
        enrollment_consulted=False,
        choices={JETSTREAM: ImageChoice(chosen, ImageRule.NEWEST, None)},
        shas={"metric-hub": "a" * 40},
        pin=PinLatest("label jetstream/pin of Workflow jetstream-abcde"),
    )


def _admission(workflow: str = "jetstream-abcde", uid: str | None = "uid-jetstream-abcde"):  # type: ignore[no-untyped-def]
    pod = argo_pod("my-experiment", workflow=workflow)
    if uid:
        pod["metadata"]["ownerReferences"] = [
            {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": workflow,
             "uid": uid, "controller": True, "blockOwnerDeletion": True},
        ]  # fmt: skip
    request = parse_review(review_of(pod))
    return request, read_pod(request.object, [JETSTREAM], request.namespace)


def test_an_event_is_recorded_on_the_workflow(api: RunningApiServer) -> None:
    recorder = EventRecorder(api_client(api.kubeconfig), instance="jetstream-pin-7d9f-abc")
    request, facts = _admission()
    recorder(request, facts, _decision())
    assert recorder.flush()
    [event] = api.cluster.events
    validate(event)
    assert event["involvedObject"] == {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "name": "jetstream-abcde", "namespace": "argo", "uid": "uid-jetstream-abcde",
    }  # fmt: skip
    assert event["metadata"]["namespace"] == "argo"
    assert event["metadata"]["name"].startswith("jetstream-abcde.")
    assert (event["type"], event["reason"]) == ("Normal", "PinnedLatest")
    assert event["reportingComponent"] == "jetstream-pin"
    assert event["reportingInstance"] == "jetstream-pin-7d9f-abc"
    message = event["message"]
    assert message.startswith("pod jetstream-abcde-1: experiment my-experiment pinned (latest)")
    assert f"{JETSTREAM}@{digest('img')}" in message
    assert "override from label jetstream/pin of Workflow jetstream-abcde" in message
    assert f"metric-hub {'a' * 40}" in message
    assert api.stand_in.calls("/api/v1/namespaces/argo/events")[0].method == "POST"
    assert recorder.sent == 1
    recorder.stop()


def test_event_without_owner_reference_has_no_uid(api: RunningApiServer) -> None:
    recorder = EventRecorder(api_client(api.kubeconfig))
    request, facts = _admission(uid=None)
    recorder(request, facts, _decision())
    assert recorder.flush()
    assert "uid" not in api.cluster.events[0]["involvedObject"]
    recorder.stop()


def test_a_failed_event_is_logged_not_raised(
    api: RunningApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    api.cluster.failing["/events"] = 500
    recorder = EventRecorder(api_client(api.kubeconfig))
    request, facts = _admission()
    with caplog.at_level(logging.WARNING, logger="webhook.kube.events"):
        recorder(request, facts, _decision())
        assert recorder.flush()
    assert (recorder.sent, recorder.failed) == (0, 1)
    assert "could not record the Event for Workflow argo/jetstream-abcde: HTTP 500" in caplog.text
    assert TOKEN not in caplog.text
    recorder.stop()


def test_a_full_queue_drops_events_instead_of_waiting(api: RunningApiServer) -> None:
    release = threading.Event()
    original = api.stand_in.route

    def stuck(request):  # type: ignore[no-untyped-def]
        release.wait(10)
        return original(request)

    api.stand_in.route = stuck
    recorder = EventRecorder(api_client(api.kubeconfig), timeout=20, queue_size=1)
    request, facts = _admission()
    recorder(request, facts, _decision())
    while not api.stand_in.calls():  # the sender is now blocked on the first Event
        threading.Event().wait(0.01)
    for _ in range(3):  # one fits the queue, two are dropped; none of these calls waits
        recorder(request, facts, _decision())
    assert recorder.dropped == 2
    release.set()
    assert recorder.flush()
    assert (recorder.sent, len(api.cluster.events)) == (2, 2)
    recorder.stop()


def test_no_event_without_a_workflow(api: RunningApiServer) -> None:
    recorder = EventRecorder(api_client(api.kubeconfig))
    pod = argo_pod("my-experiment", workflow=None)
    request = parse_review(review_of(pod))
    recorder(request, read_pod(pod, [JETSTREAM], "argo"), _decision())
    assert recorder.flush()
    assert api.stand_in.calls() == []
