"""End to end over HTTPS on 127.0.0.1: real AdmissionReviews in, valid pods out."""

from __future__ import annotations

import copy
import socket
import ssl
from typing import Any

import pytest
import requests

from harness.builders import JETSTREAM, argo_pod, container, fixture_review, review_of
from harness.servers import Server
from tests.support.kube import apply_response, validate
from webhook.core.pods import normalize_repository, parse_image

# What examples/static-data.yaml implies for each experiment.
DIGEST_2024_05 = "sha256:4bba4eebe859c802badf55f8a2bc7015e7009d574a169febeeb92ac2fd622073"
DIGEST_BREAKING = "sha256:c71233c8ade3eb276062ed6d399a0770f4499d03947daca2ead8a21c5e890fd3"
DIGEST_NEWEST = "sha256:e641342ebd290d3bd345c5b0029f04b1d9a0d7e560b0ef8680b4e7ed2c1737ab"
DIGEST_2023_03 = "sha256:5649c013e64c4c115fd1fc06c1e1133c21f91532f46fd24b21d97db4f6939647"
SHA_2024_03 = "1fd6c5091894d06c3005187ad87d8f00b2662780"
SHA_2023_06 = "6f1210910bc73f58eb0aaf165c61a41ae9ad1233"
SHA_NEWEST = "2641580544262ec2cba07a72971048d5984a024f"
SHA_OLDEST = "487a50e4259df919a05610786dd9fd7a1b106547"


def is_target(body: dict[str, Any]) -> bool:
    ref = parse_image(str(body.get("image", "")))
    return ref is not None and ref.key == normalize_repository(JETSTREAM)


def round_trip(server: Server, review: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Post, check the invariants every answer must keep, return (response, patched pod)."""
    reply = server.post_review(review)
    assert reply.status_code == 200, reply.text
    response = reply.json()
    assert response["apiVersion"] == "admission.k8s.io/v1"
    assert response["response"]["uid"] == review["request"]["uid"]
    before = review["request"]["object"]
    after = apply_response(before, response)
    validate(after)
    for field in ("initContainers", "containers"):
        for old, new in zip(
            before["spec"].get(field, []), after["spec"].get(field, []), strict=True
        ):
            if not is_target(old):
                assert new == old, f"non-target container {old['name']} changed"
    untouched = {
        k: v for k, v in before["spec"].items() if k not in ("containers", "initContainers")
    }
    assert {k: after["spec"][k] for k in untouched} == untouched
    return response, after


def assert_idempotent(server: Server, pod: dict[str, Any]) -> None:
    response, again = round_trip(server, review_of(pod))
    assert "patch" not in response["response"], "a second review must not patch again"
    assert again == pod


@pytest.mark.parametrize(
    ("fixture", "digest", "sha"),
    [
        ("01-create-emissary-v3.6.json", DIGEST_2024_05, SHA_2024_03),
        ("02-create-label-slug-v3.5.json", DIGEST_BREAKING, SHA_2023_06),
    ],
)
def test_argo_fixtures(server: Server, fixture: str, digest: str, sha: str) -> None:
    review = fixture_review(fixture)
    validate(review["request"]["object"])
    response, pod = round_trip(server, review)
    main = pod["spec"]["containers"][1]
    assert main["name"] == "main"
    assert main["image"] == f"{JETSTREAM}@{digest}"
    assert {"name": "METRIC_HUB_SHA", "value": sha} in main["env"]
    assert pod["metadata"]["annotations"]["jetstream/metric-hub-sha"] == sha
    assert response["response"]["auditAnnotations"]["pinned-image"] == main["image"]
    assert_idempotent(server, pod)


def _with_init_target() -> dict[str, Any]:
    pod = argo_pod("my-experiment")
    pod["spec"]["initContainers"].append(
        container("prep", f"{JETSTREAM}:v1", "jetstream", "--experiment_slug", "my-experiment")
    )
    return pod


def _generate_name() -> dict[str, Any]:
    pod = argo_pod("long-running-study", labels={"jetstream/pin": DIGEST_2023_03[7:20]})
    del pod["metadata"]["name"]
    pod["metadata"]["generateName"] = "jetstream-"
    return pod


@pytest.mark.parametrize(
    ("pod", "image", "sha", "reason"),
    [
        (argo_pod("my-experiment"), DIGEST_BREAKING, SHA_OLDEST, "breaking"),
        (argo_pod("brand-new-experiment"), DIGEST_NEWEST, SHA_NEWEST, "not-enrolled"),
        (argo_pod("never-heard-of-it"), DIGEST_NEWEST, SHA_NEWEST, "not-enrolled"),
        (argo_pod("long-running-study"), DIGEST_NEWEST, SHA_NEWEST, "latest"),
        (
            argo_pod("my-experiment", labels={"jetstream/pin": "latest"}),
            DIGEST_NEWEST,
            SHA_NEWEST,
            "latest",
        ),
        (
            argo_pod("my-experiment", annotations={"jetstream/pin-digest": DIGEST_2023_03}),
            DIGEST_2023_03,
            SHA_OLDEST,
            "override",
        ),
        (_generate_name(), DIGEST_2023_03, SHA_OLDEST, "override"),
        (
            argo_pod("my-experiment", env=[{"name": "METRIC_HUB_SHA", "value": "stale"}]),
            DIGEST_BREAKING,
            SHA_OLDEST,
            "breaking",
        ),
        (
            argo_pod("my-experiment", image_ref=f"{JETSTREAM}@{DIGEST_2023_03}"),
            DIGEST_2023_03,
            SHA_OLDEST,
            "already-pinned",
        ),
        (_with_init_target(), DIGEST_BREAKING, SHA_OLDEST, "breaking"),
    ],
    ids=[
        "enrolled before a breaking release",
        "not enrolled (null)",
        "not enrolled (unknown)",
        "overrides entry latest",
        "label latest",
        "digest annotation",
        "generateName + prefix",
        "stale env replaced",
        "already pinned",
        "initContainer target",
    ],
)
def test_built_pods(server: Server, pod: dict[str, Any], image: str, sha: str, reason: str) -> None:
    validate(pod)
    _, after = round_trip(server, review_of(pod))
    targets = [
        c
        for f in ("initContainers", "containers")
        for c in after["spec"].get(f, [])
        if is_target(c)
    ]
    assert targets
    for target in targets:
        assert target["image"] == f"{JETSTREAM}@{image}"
        assert [e for e in target["env"] if e["name"] == "METRIC_HUB_SHA"] == [
            {"name": "METRIC_HUB_SHA", "value": sha}
        ]
    assert after["metadata"]["annotations"]["jetstream/pin-reason"] == reason
    assert_idempotent(server, after)


def test_pass_through_pod_is_unchanged(server: Server) -> None:
    response, after = round_trip(server, review_of(argo_pod(None)))
    assert response["response"] == {"uid": response["response"]["uid"], "allowed": True}
    assert after == review_of(argo_pod(None))["request"]["object"]


@pytest.mark.parametrize(
    ("labels", "code", "fragment"),
    [
        ({"jetstream/experiment-slug": "bad slug"}, 400, "is not valid"),
        ({"jetstream/pin": "nope"}, 400, "accepted"),
        ({"jetstream/pin": "0" * 12}, 422, "not an image in the registry"),
    ],
)
def test_refusals_over_the_wire(
    server: Server, labels: dict[str, str], code: int, fragment: str
) -> None:
    reply = server.post_review(review_of(argo_pod("my-experiment", labels=labels)))
    body = reply.json()["response"]
    assert reply.status_code == 200
    assert body["allowed"] is False
    assert body["status"]["code"] == code
    assert fragment in body["status"]["message"]


def test_dry_run_gets_the_same_patch(server: Server) -> None:
    review = review_of(argo_pod("my-experiment"))
    dry = copy.deepcopy(review)
    dry["request"]["dryRun"] = True
    assert (
        server.post_review(dry).json()["response"]["patch"]
        == (server.post_review(review).json()["response"]["patch"])
    )


def test_malformed_body_is_400_and_the_server_keeps_serving(server: Server) -> None:
    reply = server.session.post(
        f"{server.url}/mutate", data=b"{", timeout=5, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 400
    assert "not valid JSON" in reply.json()["error"]
    assert server.session.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_plain_http_is_not_served(server: Server) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url.replace("https://", "http://") + "/healthz", timeout=5)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_below_1_2_is_refused(server: Server) -> None:
    # The client below can speak TLS 1.1 (checked against a permissive server while
    # writing this test), so a failed handshake here is the webhook's refusal.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    host, port = server.url.removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
    ):
        context.wrap_socket(raw).do_handshake()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        assert tls.version() == "TLSv1.2"
