"""The failure policy across the real wire: a faulty backend behind the real webhook.

Two webhooks (onError deny and allow) run under gunicorn with TLS; their
sources point at local stand-ins whose answers the tests break on purpose.
Every review uses a fresh slug, so no cache hides the fault.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.builders import JETSTREAM, argo_pod, review_of, utc
from harness.ports import free_port
from harness.servers import Server, example_config, running_server
from harness.standins.base import Reply, json_reply
from harness.standins.bigquery import BigQueryStandIn, bigquery_source, running_bigquery
from tests.support.kube import apply_response, validate

_fresh = itertools.count()


def fresh_slug() -> str:
    return f"fault-test-{next(_fresh)}"


@dataclass
class Backends:
    bigquery: BigQueryStandIn
    deny: Server
    allow: Server


def _config(workdir: Path, bigquery_url: str, on_error: str) -> dict[str, Any]:
    config = example_config(workdir)
    config["onError"] = on_error
    config["enrollments"] = bigquery_source(bigquery_url, timeout=0.5)
    return config


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    with running_bigquery() as bigquery:
        assert bigquery.stand_in is not None
        bigquery.add("enrollments_enrolled_experiment", utc("2024-05-30T02:00:00Z"))
        url = bigquery.stand_in.url
        deny_dir = Path(tmp_path_factory.mktemp("deny"))
        allow_dir = Path(tmp_path_factory.mktemp("allow"))
        with (
            running_server(deny_dir, _config(deny_dir, url, "deny")) as deny,
            running_server(allow_dir, _config(allow_dir, url, "allow")) as allow,
        ):
            yield Backends(bigquery, deny, allow)
            bigquery.stand_in.fault = None


FAULTS = {
    "timeout": (Reply(200, b"{}", {"Content-Type": "application/json"}, delay=2.0),
                "timed out after 0.5s"),
    "5xx": (json_reply({"error": {"code": 500, "message": "backendError"}}, 500), "HTTP 500"),
    "401": (json_reply({"error": {"code": 401}}, 401), "not authorized"),
    "403": (json_reply({"error": {"code": 403, "message": "Access Denied"}}, 403),
            "HTTP 403: not authorized"),
    "malformed": (Reply(200, b"<html>oops", {"Content-Type": "application/json"}),
                  "malformed answer"),
}  # fmt: skip


@pytest.mark.parametrize("fault", list(FAULTS))
def test_deny_refuses_with_503_naming_slug_source_and_cause(backends: Backends, fault: str) -> None:
    reply, cause = FAULTS[fault]
    assert backends.bigquery.stand_in is not None
    backends.bigquery.stand_in.fault = reply
    slug = fresh_slug()
    try:
        body = backends.deny.post_review(review_of(argo_pod(slug))).json()["response"]
    finally:
        backends.bigquery.stand_in.fault = None
    assert body["allowed"] is False
    assert body["status"]["code"] == 503
    assert body["status"]["reason"] == "ServiceUnavailable"
    message = body["status"]["message"]
    assert f"'{slug}'" in message
    assert "bigquery" in message
    assert cause in message


@pytest.mark.parametrize("fault", list(FAULTS))
def test_allow_admits_unchanged_with_warning_and_annotation(backends: Backends, fault: str) -> None:
    reply, cause = FAULTS[fault]
    assert backends.bigquery.stand_in is not None
    backends.bigquery.stand_in.fault = reply
    review = review_of(argo_pod(fresh_slug()))
    try:
        response = backends.allow.post_review(review).json()
    finally:
        backends.bigquery.stand_in.fault = None
    body = response["response"]
    assert body["allowed"] is True
    assert "admitted unpinned" in body["warnings"][0]
    pod = apply_response(review["request"]["object"], response)
    validate(pod)
    assert pod["spec"] == review["request"]["object"]["spec"]
    assert cause in pod["metadata"]["annotations"]["jetstream/pin-error"]


def test_connection_refused_is_denied(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with running_server(tmp_path, _config(tmp_path, dead, "deny")) as server:
        body = server.post_review(review_of(argo_pod(fresh_slug()))).json()["response"]
        assert body["status"]["code"] == 503
        assert "cannot connect" in body["status"]["message"]
        assert server.session.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_the_server_keeps_serving_after_faults(backends: Backends) -> None:
    review = review_of(argo_pod("enrolled-experiment"))
    response = backends.deny.post_review(review).json()
    pod = apply_response(review["request"]["object"], response)
    assert pod["spec"]["containers"][1]["image"].startswith(f"{JETSTREAM}@sha256:4bba4eeb")
    assert pod["metadata"]["annotations"]["jetstream/enrolled-at"] == "2024-05-30T02:00:00Z"
