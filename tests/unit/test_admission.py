"""The admission handler end to end, with fakes at the source interfaces."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from harness.builders import JETSTREAM, argo_pod, container, fixture_review, review_of
from tests.support.fakes import (
    HISTORY_WITH_BREAKING,
    IMG_2023_01,
    IMG_2023_03,
    IMG_2024_02,
    IMG_2024_06,
    SHA_2023_01,
    SHA_2023_06,
    SHA_2024_06,
    FakeCommits,
    World,
)
from tests.support.kube import decode_patch
from webhook.admission.admitter import Outcome, Result
from webhook.core.review import parse_review
from webhook.sources import SourceError

MAIN = ("containers", 1)


def admit(world: World, review: dict[str, Any], **options: Any) -> Result:
    return world.admitter(**options).admit(parse_review(review))


def patched(review: dict[str, Any], result: Result) -> dict[str, Any]:
    pod = copy.deepcopy(review["request"]["object"])
    result_pod: dict[str, Any] = jsonpatch.apply_patch(pod, decode_patch(result.response))
    return result_pod


def main_container(pod: dict[str, Any]) -> dict[str, Any]:
    main: dict[str, Any] = pod["spec"]["containers"][1]
    return main


def env_of(container_body: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container_body.get("env", [])}


def test_argo_v36_fixture_is_pinned_to_the_enrollment_image() -> None:
    review = fixture_review("01-create-emissary-v3.6.json")
    result = admit(World(), review)
    assert result.outcome == Outcome.PATCHED
    assert result.response["response"]["uid"] == review["request"]["uid"]
    pod = patched(review, result)
    main = main_container(pod)
    assert main["image"] == f"{JETSTREAM}@{IMG_2023_01.digest}"
    assert env_of(main)["METRIC_HUB_SHA"] == SHA_2023_01.sha
    assert env_of(main)["ARGO_CONTAINER_NAME"] == "main"
    notes = pod["metadata"]["annotations"]
    assert notes["jetstream/pinned-image"] == main["image"]
    assert notes["jetstream/original-image"] == f"{JETSTREAM}:latest"
    assert notes["jetstream/enrolled-at"] == "2023-02-01T00:00:00Z"
    assert notes["jetstream/metric-hub-sha"] == SHA_2023_01.sha
    assert notes["jetstream/pin-reason"] == "enrollment"
    assert notes["workflows.argoproj.io/node-id"] == "jetstream-k9v2q-3755060862"


def test_patch_is_minimal_and_touches_only_main() -> None:
    review = fixture_review("01-create-emissary-v3.6.json")
    ops = decode_patch(admit(World(), review).response)
    paths = sorted(op["path"] for op in ops)
    assert paths == [
        "/metadata/annotations/jetstream~1enrolled-at",
        "/metadata/annotations/jetstream~1metric-hub-sha",
        "/metadata/annotations/jetstream~1original-image",
        "/metadata/annotations/jetstream~1pin-reason",
        "/metadata/annotations/jetstream~1pinned-image",
        "/spec/containers/1/env/-",
        "/spec/containers/1/image",
    ]


def test_argo_v35_fixture_uses_the_label_slug() -> None:
    review = fixture_review("02-create-label-slug-v3.5.json")
    result = admit(World(), review)
    pod = patched(review, result)
    assert main_container(pod)["image"] == f"{JETSTREAM}@{IMG_2023_03.digest}"
    assert result.facts is not None
    assert result.facts.slug == "android-onboarding-notification-permission-v2"


def test_second_review_of_the_patched_pod_yields_no_patch_and_no_lookup() -> None:
    world = World()
    review = fixture_review("01-create-emissary-v3.6.json")
    first = admit(world, review)
    lookups = world.lookups
    again = review_of(patched(review, first))
    second = admit(world, again)
    assert second.outcome == Outcome.UNCHANGED
    assert "patch" not in second.response["response"]
    assert world.lookups == lookups


def test_reinvocation_restores_env_removed_by_another_webhook() -> None:
    review = fixture_review("01-create-emissary-v3.6.json")
    pod = patched(review, admit(World(), review))
    main_container(pod)["env"] = [
        e for e in main_container(pod)["env"] if e["name"] != "METRIC_HUB_SHA"
    ]
    result = admit(World(), review_of(pod))
    assert [op["path"] for op in decode_patch(result.response)] == ["/spec/containers/1/env/-"]


@pytest.mark.parametrize(
    ("slug", "expected_image", "sha", "reason", "enrolled_at"),
    [
        ("my-experiment", IMG_2023_01, SHA_2023_01, "enrollment", "2023-02-01T00:00:00Z"),
        ("late-experiment", IMG_2024_02, SHA_2023_06, "enrollment", "2024-03-01T00:00:00Z"),
        ("never-enrolled", IMG_2024_06, SHA_2024_06, "not-enrolled", "none"),
    ],
)
def test_rules_through_the_handler(
    slug: str, expected_image: Any, sha: Any, reason: str, enrolled_at: str
) -> None:
    review = review_of(argo_pod(slug))
    pod = patched(review, admit(World(), review))
    assert main_container(pod)["image"] == f"{JETSTREAM}@{expected_image.digest}"
    assert env_of(main_container(pod))["METRIC_HUB_SHA"] == sha.sha
    assert pod["metadata"]["annotations"]["jetstream/pin-reason"] == reason
    assert pod["metadata"]["annotations"]["jetstream/enrolled-at"] == enrolled_at


def test_breaking_release_moves_an_older_experiment_up() -> None:
    world = World()
    world.images.history = HISTORY_WITH_BREAKING
    review = review_of(argo_pod("before-breaking"))
    pod = patched(review, admit(world, review))
    assert main_container(pod)["image"] == f"{JETSTREAM}@{IMG_2024_02.digest}"
    assert pod["metadata"]["annotations"]["jetstream/pin-reason"] == "breaking"
    # metric-hub follows the enrollment time, not the breaking release (rule 6)
    assert env_of(main_container(pod))["METRIC_HUB_SHA"] == SHA_2023_06.sha


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (None, [{"name": "METRIC_HUB_SHA", "value": SHA_2023_01.sha}]),
        ([], [{"name": "METRIC_HUB_SHA", "value": SHA_2023_01.sha}]),
        (
            [{"name": "OTHER", "value": "1"}],
            [{"name": "OTHER", "value": "1"}, {"name": "METRIC_HUB_SHA", "value": SHA_2023_01.sha}],
        ),
        (
            [{"name": "METRIC_HUB_SHA", "value": "old"}, {"name": "B", "value": "2"}],
            [{"name": "METRIC_HUB_SHA", "value": SHA_2023_01.sha}, {"name": "B", "value": "2"}],
        ),
        (
            [
                {
                    "name": "METRIC_HUB_SHA",
                    "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}},
                }
            ],
            [{"name": "METRIC_HUB_SHA", "value": SHA_2023_01.sha}],
        ),
    ],
    ids=["absent", "empty", "appended", "replaced", "valueFrom replaced"],
)
def test_env_add_or_replace(env: Any, expected: list[dict[str, Any]]) -> None:
    review = review_of(argo_pod("my-experiment", env=env))
    pod = patched(review, admit(World(), review))
    assert main_container(pod)["env"] == expected


def test_annotations_added_beside_existing_ones() -> None:
    review = review_of(argo_pod("my-experiment", annotations={"keep": "me"}))
    pod = patched(review, admit(World(), review))
    assert pod["metadata"]["annotations"]["keep"] == "me"
    assert pod["metadata"]["annotations"]["jetstream/pin-reason"] == "enrollment"


def test_pass_through_without_slug() -> None:
    world = World()
    result = admit(world, review_of(argo_pod(None)))
    assert result.outcome == Outcome.PASS_THROUGH
    assert result.response["response"] == {
        "uid": result.response["response"]["uid"],
        "allowed": True,
    }
    assert world.lookups == 0


def test_pass_through_without_target_container() -> None:
    pod = argo_pod(None, image_ref="busybox:1", labels={"jetstream/experiment-slug": "x"})
    assert admit(World(), review_of(pod)).outcome == Outcome.PASS_THROUGH


@pytest.mark.parametrize(
    ("operation", "kind"), [("UPDATE", "Pod"), ("DELETE", "Pod"), ("CREATE", "ConfigMap")]
)
def test_other_operations_and_kinds_are_ignored(operation: str, kind: str) -> None:
    result = admit(World(), review_of(argo_pod("my-experiment"), operation, kind=kind))
    assert result.outcome == Outcome.IGNORED
    assert result.response["response"]["allowed"] is True
    assert "patch" not in result.response["response"]


def test_already_pinned_image_is_left_alone_but_config_is_pinned() -> None:
    given = f"{JETSTREAM}@sha256:{'e' * 64}"
    world = World()
    review = review_of(argo_pod("my-experiment", image_ref=given))
    result = admit(world, review)
    pod = patched(review, result)
    assert main_container(pod)["image"] == given
    assert env_of(main_container(pod))["METRIC_HUB_SHA"] == SHA_2023_01.sha
    assert pod["metadata"]["annotations"]["jetstream/pin-reason"] == "already-pinned"
    assert world.images.calls == 0
    assert admit(world, review_of(pod)).outcome == Outcome.UNCHANGED


@pytest.mark.parametrize(
    ("labels", "annotations", "expected_image", "sha", "reason"),
    [
        ({"jetstream/pin": "latest"}, None, IMG_2024_06, SHA_2024_06, "latest"),
        ({"jetstream/pin": IMG_2023_03.digest[7:19]}, None, IMG_2023_03, SHA_2023_01, "override"),
        ({}, {"jetstream/pin-digest": IMG_2024_02.digest}, IMG_2024_02, SHA_2023_01, "override"),
    ],
    ids=["latest", "digest prefix", "digest annotation"],
)
def test_pod_overrides(
    labels: dict[str, str], annotations: Any, expected_image: Any, sha: Any, reason: str
) -> None:
    review = review_of(argo_pod("my-experiment", labels=labels, annotations=annotations))
    result = admit(World(), review)
    pod = patched(review, result)
    assert main_container(pod)["image"] == f"{JETSTREAM}@{expected_image.digest}"
    assert env_of(main_container(pod))["METRIC_HUB_SHA"] == sha.sha
    assert pod["metadata"]["annotations"]["jetstream/pin-reason"] == reason
    (warning,) = result.response["response"]["warnings"]
    assert warning.startswith("jetstream-pin: my-experiment pinned to ")
    assert len(warning) <= 120


def test_latest_needs_no_enrollment_lookup() -> None:
    world = World()
    review = review_of(argo_pod("my-experiment", labels={"jetstream/pin": "latest"}))
    pod = patched(review, admit(world, review))
    assert world.enrollments.calls == 0
    assert "jetstream/enrolled-at" not in pod["metadata"]["annotations"]


def test_override_precedence_pod_then_workflow_then_configmap() -> None:
    world = World()
    world.overrides.workflows = {("argo", "wf"): IMG_2023_03.digest[7:20]}
    world.overrides.slugs = {"my-experiment": "latest"}
    pod_label = argo_pod("my-experiment", workflow="wf", labels={"jetstream/pin": "latest"})
    assert _image(world, pod_label) == IMG_2024_06.digest
    assert _image(world, argo_pod("my-experiment", workflow="wf")) == IMG_2023_03.digest
    assert _image(world, argo_pod("my-experiment", workflow="other")) == IMG_2024_06.digest
    world.overrides.slugs = {}
    assert _image(world, argo_pod("my-experiment", workflow="other")) == IMG_2023_01.digest


def _image(world: World, pod: dict[str, Any]) -> str:
    review = review_of(pod)
    image: str = main_container(patched(review, admit(world, review)))["image"]
    return image.split("@")[1]


@pytest.mark.parametrize(
    ("labels", "annotations", "code", "fragment"),
    [
        ({"jetstream/pin": "newest"}, None, 400, "accepted: 'latest'"),
        ({"jetstream/pin": "0" * 12}, None, 422, "not an image in the registry"),
        ({}, {"jetstream/pin-digest": "sha256:short"}, 400, "sha256:<64 hex>"),
        ({"jetstream/experiment-slug": "<script>"}, None, 400, "'<script>' is not valid"),
        ({"jetstream/experiment-slug": "a" * 300}, None, 400, "is not valid"),
    ],
    ids=["unknown pin", "missing digest", "bad digest annotation", "hostile slug", "long slug"],
)
def test_refusals_say_what_to_change(
    labels: dict[str, str], annotations: Any, code: int, fragment: str
) -> None:
    world = World()
    result = admit(
        world, review_of(argo_pod("my-experiment", labels=labels, annotations=annotations))
    )
    body = result.response["response"]
    assert result.outcome == Outcome.REFUSED
    assert body["allowed"] is False
    assert body["status"]["code"] == code
    assert fragment in body["status"]["message"]
    assert world.enrollments.calls == 0 or code == 422


def test_invalid_slug_is_never_sent_to_bigquery() -> None:
    world = World()
    admit(world, review_of(argo_pod("bad;slug")))
    assert world.enrollments.calls == 0


@pytest.mark.parametrize("part", ["enrollments", "images", "commits", "overrides"])
def test_lookup_failure_denied_with_503(part: str) -> None:
    world = World()
    getattr(world, part).error = SourceError(f"fake {part}", "timed out after 2.0s")
    result = admit(world, review_of(argo_pod("my-experiment")))
    status = result.response["response"]["status"]
    assert result.outcome == Outcome.FAILED_DENIED
    assert result.response["response"]["allowed"] is False
    assert (status["code"], status["reason"]) == (503, "ServiceUnavailable")
    assert "'my-experiment'" in status["message"]
    assert f"fake {part}" in status["message"]
    assert "timed out after 2.0s" in status["message"]


def test_lookup_failure_allowed_marks_the_pod() -> None:
    world = World()
    world.enrollments.error = SourceError("fake enrollments", "HTTP 503")
    review = review_of(argo_pod("my-experiment"))
    result = admit(world, review, on_error="allow")
    assert result.outcome == Outcome.FAILED_ALLOWED
    pod = patched(review, result)
    assert main_container(pod)["image"] == f"{JETSTREAM}:latest"
    assert "HTTP 503" in pod["metadata"]["annotations"]["jetstream/pin-error"]
    (warning,) = result.response["response"]["warnings"]
    assert "admitted unpinned" in warning
    assert [op["path"] for op in decode_patch(result.response)] == ["/metadata/annotations"]


def test_unexpected_source_exception_follows_the_policy() -> None:
    world = World()
    world.images.error = RuntimeError("boom with secret token abc")
    result = admit(world, review_of(argo_pod("my-experiment")))
    message = result.response["response"]["status"]["message"]
    assert result.response["response"]["status"]["code"] == 503
    assert "RuntimeError" in message
    assert "secret" not in message


def test_audit_mode_never_patches() -> None:
    review = review_of(argo_pod("my-experiment"))
    result = admit(World(), review, mode="audit")
    body = result.response["response"]
    assert result.outcome == Outcome.AUDITED
    assert body["allowed"] is True
    assert "patch" not in body
    assert body["auditAnnotations"]["pinned-image"] == f"{JETSTREAM}@{IMG_2023_01.digest}"
    assert "would pin my-experiment" in body["warnings"][0]


@pytest.mark.parametrize("labels", [{"jetstream/pin": "bogus"}, {}])
def test_audit_mode_never_refuses(labels: dict[str, str]) -> None:
    world = World()
    world.enrollments.error = SourceError("fake enrollments", "down")
    result = admit(world, review_of(argo_pod("my-experiment", labels=labels)), mode="audit")
    assert result.response["response"]["allowed"] is True
    assert "patch" not in result.response["response"]


def test_dry_run_gets_the_same_answer_and_no_hook() -> None:
    seen: list[str] = []
    world = World()
    admitter = world.admitter(on_decision=[lambda req, facts, decision: seen.append(req.uid)])
    review = review_of(argo_pod("my-experiment"))
    dry = copy.deepcopy(review)
    dry["request"]["dryRun"] = True
    real = admitter.admit(parse_review(review)).response["response"]
    dry_run = admitter.admit(parse_review(dry)).response["response"]
    assert dry_run["patch"] == real["patch"]
    assert seen == [review["request"]["uid"]]


def test_audit_annotations_have_no_slash_and_short_keys() -> None:
    result = admit(World(), review_of(argo_pod("my-experiment")))
    audit = result.response["response"]["auditAnnotations"]
    assert audit["pin-reason"] == "enrollment"
    assert all("/" not in k and len(k) <= 63 for k in audit)


def test_several_config_repos_each_get_their_env() -> None:
    other = FakeCommits(name="fake other")
    world = World(extra_repos=[("other-config", "OTHER_CONFIG_SHA", other)])
    review = review_of(argo_pod("my-experiment"))
    pod = patched(review, admit(world, review))
    env = env_of(main_container(pod))
    assert env["METRIC_HUB_SHA"] == env["OTHER_CONFIG_SHA"] == SHA_2023_01.sha
    assert pod["metadata"]["annotations"]["jetstream/other-config-sha"] == SHA_2023_01.sha


def test_init_container_target_is_pinned_too() -> None:
    pod = argo_pod("my-experiment")
    pod["spec"]["initContainers"].append(container("prep", f"{JETSTREAM}:v1", "jetstream"))
    review = review_of(pod)
    after = patched(review, admit(World(), review))
    assert after["spec"]["initContainers"][0]["image"].startswith("quay.io/argoproj/argoexec")
    assert after["spec"]["initContainers"][1]["image"] == f"{JETSTREAM}@{IMG_2023_01.digest}"
    assert after["spec"]["containers"][0] == pod["spec"]["containers"][0]


def test_malformed_env_on_target_is_refused() -> None:
    pod = argo_pod("my-experiment")
    main_container(pod)["env"] = "METRIC_HUB_SHA=x"
    result = admit(World(), review_of(pod))
    assert result.response["response"]["status"]["code"] == 400
    assert "env must be a list" in result.response["response"]["status"]["message"]
