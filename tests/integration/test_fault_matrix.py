"""The fault matrix: every remote source, every way it can fail, both failure policies.

Each case builds the webhook from a config (the real wiring and caches) whose
one remote source points at a stand-in that fails in one way, then admits a
real Argo pod. Under `deny` the pod is refused with 503 naming the source and
the cause; under `allow` it is admitted unchanged, with a warning and the
`jetstream/pin-error` annotation. The wire itself (gunicorn, TLS) is covered
by test_failure_policy.py; here the breadth is the point.

Slow backends (a body dripped in small pieces, each gap under the read
timeout, or nothing after the headers) are given a read timeout longer than
the admission deadline: the deadline, not the source's timeout, must answer,
within the deadline + 0.5 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.builders import EXAMPLES, argo_pod, commit, review_of, utc
from harness.ports import free_port
from harness.standins.artifactregistry import ArtifactRegistryStandIn
from harness.standins.base import Reply, json_reply, serving
from harness.standins.bigquery import BigQueryStandIn, bigquery_source
from harness.standins.github import GithubStandIn
from harness.standins.registry import RegistryStandIn
from tests.support.kube import apply_response
from webhook.config import parse_config
from webhook.core.review import parse_review
from webhook.wiring import Wiring

TIMEOUT = 0.3
DEADLINE = 1.0
SLOW_TIMEOUT = 3.0  # per read, over the deadline: only the deadline can end a slow answer


@dataclass(frozen=True)
class Kind:
    """One remote source: its stand-in route, where it goes in the config, its name."""

    route: Callable[[], Any]
    place: Callable[[dict[str, Any], str, float], None]
    source: str


def _bigquery(config: dict[str, Any], url: str, timeout: float = TIMEOUT) -> None:
    config["enrollments"] = bigquery_source(url, timeout=timeout)
    config["cache"] = {"prefetchEnrollments": False}


def _artifactregistry(config: dict[str, Any], url: str, timeout: float = TIMEOUT) -> None:
    history = ArtifactRegistryStandIn().source(url)
    history["timeoutSeconds"] = timeout
    config["images"][0]["history"] = history


def _oci(config: dict[str, Any], url: str, timeout: float = TIMEOUT) -> None:
    config["images"][0]["history"] = {
        "type": "oci", "name": "team/app", "endpoint": url, "timeoutSeconds": timeout,
    }  # fmt: skip


def _github(config: dict[str, Any], url: str, timeout: float = TIMEOUT) -> None:
    config["configRepos"][0]["history"] = {
        "type": "github", "repo": "mozilla/metric-hub", "branch": "main",
        "endpoint": url, "timeoutSeconds": timeout,
    }  # fmt: skip


def _registry() -> RegistryStandIn:
    registry = RegistryStandIn("team/app")
    registry.add_image("only", "2024-01-01T00:00:00Z", ["v1"])
    return registry


def _bigquery_route() -> Any:
    fake = BigQueryStandIn()
    fake.add("enrollments_my_experiment", utc("2024-01-01T00:00:00Z"))
    return fake


KINDS = {
    "bigquery": Kind(_bigquery_route, _bigquery, "bigquery"),
    "artifactregistry": Kind(ArtifactRegistryStandIn, _artifactregistry,
                             "artifactregistry"),
    "oci": Kind(_registry, _oci, "oci"),
    "github": Kind(lambda: GithubStandIn([commit("c1", "2023-01-01T00:00:00Z")]), _github,
                   "github mozilla/metric-hub"),
}  # fmt: skip

FAULTS: dict[str, tuple[Reply | None, str]] = {
    "timeout": (Reply(200, b"{}", {"Content-Type": "application/json"}, delay=1.0), "timed out"),
    "5xx": (json_reply({"error": {"code": 503, "message": "unavailable"}}, 503), "503"),
    "401": (json_reply({"error": {"code": 401, "message": "no"}}, 401), "not authorized"),
    "403": (json_reply({"error": {"code": 403, "message": "no"}}, 403), "not authorized"),
    "malformed": (Reply(200, b"<html>not json", {"Content-Type": "application/json"}),
                  "malformed"),
    "refused": (None, "connect"),
}  # fmt: skip

_JSON = {"Content-Type": "application/json"}
SLOW_FAULTS: dict[str, Reply] = {
    # 10 bytes every 0.25 s: every gap far under the read timeout, 10 s in all.
    "slow drip": Reply(200, b" " * 398 + b"{}", _JSON, drip=0.25),
    "hang after headers": Reply(200, b"{}", _JSON, hang=10.0),
}


@contextmanager
def backend(kind: Kind, fault: str) -> Iterator[str]:
    if fault in SLOW_FAULTS:
        with serving(kind.route()) as stand_in:
            stand_in.fault = SLOW_FAULTS[fault]
            yield stand_in.url
        return
    if fault == "refused":
        yield f"http://127.0.0.1:{free_port()}"
        return
    with serving(kind.route()) as stand_in:
        stand_in.fault = FAULTS[fault][0]
        yield stand_in.url


def admit(
    tmp_path: Path, kind: Kind, url: str, on_error: str, timeout: float = TIMEOUT
) -> tuple[dict[str, Any], Any]:
    config: dict[str, Any] = yaml.safe_load((EXAMPLES / "config.yaml").read_text())
    config["onError"] = on_error
    config["server"] = {"admissionDeadlineSeconds": DEADLINE}
    kind.place(config, url, timeout)
    review = review_of(argo_pod("my-experiment"))
    admitter = Wiring(parse_config(config, EXAMPLES)).admitter
    return review, admitter.admit(parse_review(review)).response


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("name", list(KINDS))
def test_deny(tmp_path: Path, name: str, fault: str) -> None:
    kind = KINDS[name]
    with backend(kind, fault) as url:
        _, response = admit(tmp_path, kind, url, "deny")
    body = response["response"]
    assert body["allowed"] is False
    assert (body["status"]["code"], body["status"]["reason"]) == (503, "ServiceUnavailable")
    message = body["status"]["message"]
    assert "'my-experiment'" in message
    assert kind.source in message
    assert FAULTS[fault][1] in message


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("name", list(KINDS))
def test_allow(tmp_path: Path, name: str, fault: str) -> None:
    kind = KINDS[name]
    with backend(kind, fault) as url:
        review, response = admit(tmp_path, kind, url, "allow")
    assert response["response"]["allowed"] is True
    assert "admitted unpinned" in response["response"]["warnings"][0]
    pod = apply_response(review["request"]["object"], response)
    assert pod["spec"] == review["request"]["object"]["spec"]
    error = pod["metadata"]["annotations"]["jetstream/pin-error"]
    assert kind.source in error
    assert FAULTS[fault][1] in error


def test_every_source_answers_when_healthy(tmp_path: Path) -> None:
    for kind in KINDS.values():
        with serving(kind.route()) as stand_in:
            _, response = admit(tmp_path, kind, stand_in.url, "deny")
        assert response["response"]["allowed"] is True, (kind.source, response)
        assert "patch" in response["response"]


@pytest.mark.parametrize("on_error", ["deny", "allow"])
@pytest.mark.parametrize("fault", list(SLOW_FAULTS))
@pytest.mark.parametrize("name", list(KINDS))
def test_slow_backend_answered_within_the_deadline(
    tmp_path: Path, name: str, fault: str, on_error: str
) -> None:
    kind = KINDS[name]
    with backend(kind, fault) as url:
        started = time.monotonic()
        review, response = admit(tmp_path, kind, url, on_error, timeout=SLOW_TIMEOUT)
        elapsed = time.monotonic() - started
    print(f"{name} {fault} {on_error}: answered in {elapsed:.2f}s")
    assert elapsed < DEADLINE + 0.5, f"answered after {elapsed:.2f}s"
    body = response["response"]
    cause = f"no answer within the admission deadline of {DEADLINE:g}s"
    if on_error == "deny":
        assert (body["status"]["code"], body["status"]["reason"]) == (503, "ServiceUnavailable")
        assert kind.source in body["status"]["message"]
        assert cause in body["status"]["message"]
    else:
        pod = apply_response(review["request"]["object"], response)
        assert pod["spec"] == review["request"]["object"]["spec"]
        assert cause in pod["metadata"]["annotations"]["jetstream/pin-error"]
