"""The admission port's routes: malformed input gets a 400 that says why; nothing gets a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.builders import argo_pod, review_of
from tests.support.dispatching import DispatchClient
from tests.support.fakes import World
from webhook.serving.dispatch import Dispatch


@pytest.fixture
def client() -> DispatchClient:
    return DispatchClient(Dispatch(World().admitter()))


def post(client: DispatchClient, body: Any, content_type: str = "application/json") -> Any:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post("/mutate", data=data, content_type=content_type)


def test_a_review_is_answered(client: DispatchClient) -> None:
    review = review_of(argo_pod("my-experiment"))
    reply = post(client, review)
    assert reply.status_code == 200
    assert reply.json["response"]["uid"] == review["request"]["uid"]
    assert reply.json["response"]["patchType"] == "JSONPatch"


def test_charset_parameter_is_fine(client: DispatchClient) -> None:
    reply = post(client, review_of(argo_pod(None)), "application/json; charset=utf-8")
    assert reply.status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"{not json", "application/json", "the body is not valid JSON"),
        (b"\xff\xfe", "application/json", "the body is not valid JSON"),
        (b"NaN", "application/json", "NaN is not valid JSON"),
        (b"[" * 30_000 + b"]" * 30_000, "application/json", "nested too deeply"),
        (b"", "application/json", "the body is not valid JSON"),
        (json.dumps([1, 2]), "application/json", "the body is not a JSON object"),
        (json.dumps({"kind": "AdmissionReview"}), "application/json", "apiVersion"),
        (
            json.dumps(
                {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}
            ),
            "application/json",
            "admission.k8s.io/v1",
        ),
        (
            json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
            "application/json",
            "request is missing",
        ),
        (
            json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": {"uid": ""},
                }
            ),
            "application/json",
            "request.uid",
        ),
        (
            json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": {"uid": 5},
                }
            ),
            "application/json",
            "request.uid",
        ),
        (
            json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": {"uid": "u", "kind": "Pod"},
                }
            ),
            "application/json",
            "request.kind",
        ),
        (
            json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}},
                }
            ),
            "application/json",
            "request.operation",
        ),
        (json.dumps(review_of(None)), "text/plain", "Content-Type must be application/json"),
        (json.dumps(review_of(None)), "", "Content-Type must be application/json"),
    ],
    ids=[
        "broken",
        "not utf-8",
        "NaN",
        "deep nesting",
        "empty",
        "array",
        "no apiVersion",
        "v1beta1",
        "no request",
        "empty uid",
        "uid not string",
        "kind not object",
        "no operation",
        "text/plain",
        "no content type",
    ],
)
def test_malformed_input_is_a_400_naming_the_problem(
    client: DispatchClient, body: Any, content_type: str, message: str
) -> None:
    reply = post(client, body, content_type)
    assert reply.status_code == 400
    assert reply.mimetype == "application/json"
    assert message in reply.json["error"]


def test_dry_run_not_boolean(client: DispatchClient) -> None:
    review = review_of(argo_pod(None))
    review["request"]["dryRun"] = "yes"
    assert "dryRun" in post(client, review).json["error"]


def test_malformed_pod_inside_a_valid_review_is_refused_in_the_review(
    client: DispatchClient,
) -> None:
    reply = post(client, review_of({"metadata": "nope"}))
    assert reply.status_code == 200
    assert reply.json["response"]["allowed"] is False
    assert reply.json["response"]["status"]["code"] == 400


@pytest.mark.parametrize("method", ["get", "head"])
@pytest.mark.parametrize("port", [8443, 8444])
def test_health_and_readiness_on_both_ports(client: DispatchClient, method: str, port: int) -> None:
    base = f"https://localhost:{port}"
    live = getattr(client, method)("/healthz", base_url=base)
    assert live.status_code == 200
    assert live.data == (b'{"status": "ok"}' if method == "get" else b"")
    assert getattr(client, method)("/readyz", base_url=base).status_code == 200


def test_not_ready_is_503() -> None:
    dispatch = Dispatch(World().admitter(), readiness=lambda: (False, "warming up"))
    reply = DispatchClient(dispatch).get("/readyz")
    assert reply.status_code == 503
    assert json.loads(reply.data)["detail"] == "warming up"


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("get", "/mutate", 405),
        ("get", "/x", 404),
        ("post", "/healthz", 405),
        ("post", "/readyz", 405),
        ("get", "/status", 404),  # the admin pages are not on the admission port
    ],
)
def test_unknown_routes_answer_json(
    client: DispatchClient, method: str, path: str, code: int
) -> None:
    reply = getattr(client, method)(path)
    assert reply.status_code == code
    assert reply.mimetype == "application/json"
    assert reply.json["code"] == code
