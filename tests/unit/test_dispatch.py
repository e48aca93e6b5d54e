"""What the dispatch table answers on the loop: probes, the overloaded review, warm reviews."""

from __future__ import annotations

import json
import time

import pytest

from harness.builders import EXAMPLES, argo_pod, review_of
from webhook.config import load_config
from webhook.core.review import parse_review
from webhook.serving.dispatch import Dispatch
from webhook.serving.httpwire import parse_head
from webhook.serving.routes import ADMIN, ADMISSION, HttpReply, Request
from webhook.wiring import Wiring


def dispatch(ready: bool = True) -> Dispatch:
    admitter = Wiring(load_config(EXAMPLES / "config.yaml")).admitter
    return Dispatch(admitter, lambda: (ready, "ready" if ready else "draining: shutting down"))


def request(
    body: bytes = b"",
    content_type: str = "application/json",
    method: str = "POST",
    path: str = "/mutate",
    listener: str = ADMISSION,
) -> Request:
    head = parse_head(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    return Request(listener, 8443, head, body, None, time.monotonic())


def probe(table: Dispatch, path: str, saturated_for: float, listener: str = ADMISSION) -> HttpReply:
    asked = request(method="GET", path=path, listener=listener)
    route = table.route(asked)
    assert route.in_thread is None  # answered on the loop only
    assert route.on_loop is not None
    reply = route.on_loop(asked, saturated_for)
    assert reply is not None
    return reply


def code_of(reply: HttpReply) -> int:
    return int(reply[0].split()[0])


def overloaded(table: Dispatch, body: bytes, waited: float) -> HttpReply:
    asked = request(body)
    route = table.route(asked)
    assert route.overloaded is not None
    return route.overloaded(asked, waited)


@pytest.mark.parametrize("listener", [ADMISSION, ADMIN])
def test_liveness_answers_whatever_the_state(listener: str) -> None:
    assert code_of(probe(dispatch(ready=False), "/healthz", 100.0, listener)) == 200


@pytest.mark.parametrize("listener", [ADMISSION, ADMIN])
def test_readiness_reports_draining_and_a_long_saturation(listener: str) -> None:
    assert code_of(probe(dispatch(), "/readyz", 0.0, listener)) == 200
    assert code_of(probe(dispatch(), "/readyz", 3.0, listener)) == 200  # under the 8 s deadline
    reply = probe(dispatch(), "/readyz", 9.0, listener)
    assert code_of(reply) == 503
    assert "every admission thread busy" in json.loads(reply[2])["detail"]
    reply = probe(dispatch(ready=False), "/readyz", 0.0, listener)
    assert (code_of(reply), json.loads(reply[2])["detail"]) == (503, "draining: shutting down")


def test_an_overloaded_experiment_pod_gets_the_failure_policy() -> None:
    review = review_of(argo_pod("my-experiment"))
    status, _, body = overloaded(dispatch(), json.dumps(review).encode(), waited=8.0)
    answer = json.loads(body)["response"]
    assert status.startswith("200")
    assert answer["uid"] == review["request"]["uid"]
    assert (answer["allowed"], answer["status"]["code"]) == (False, 503)
    assert "every admission thread was busy" in answer["status"]["message"]


def test_an_overloaded_pod_that_is_not_an_experiment_still_passes() -> None:
    review = review_of(argo_pod(None))
    _, _, body = overloaded(dispatch(), json.dumps(review).encode(), waited=8.0)
    assert json.loads(body)["response"]["allowed"] is True


def test_an_overloaded_malformed_body_is_a_400() -> None:
    status, _, body = overloaded(dispatch(), b"{", waited=8.0)
    assert status.startswith("400")
    assert "the body is not valid JSON" in json.loads(body)["error"]


def test_a_review_the_caches_can_answer_is_decided_on_the_loop_and_no_other() -> None:
    table = dispatch()
    review = review_of(argo_pod("my-experiment"))
    body = json.dumps(review).encode()
    assert table.review_on_loop(request(body)) is None  # caches cold: a thread
    table.admitter.admit(parse_review(review))  # what the admission thread does
    answer = table.review_on_loop(request(body))
    assert answer is not None
    status, _, payload = answer
    assert status.startswith("200")
    assert json.loads(payload)["response"]["patchType"] == "JSONPatch"
    refused = table.review_on_loop(request(body, "text/plain"))  # no lookup needed to refuse it
    assert refused is not None
    assert refused[0].startswith("400")
    assert "Content-Type must be application/json" in json.loads(refused[2])["error"]


def test_a_review_over_the_loop_size_is_not_tried_there() -> None:
    table = dispatch()
    review = review_of(argo_pod("my-experiment"))
    table.admitter.admit(parse_review(review))  # warm
    padded = json.dumps(review, indent=4000).encode()
    assert len(padded) > table.loop_review_max_bytes
    assert table.review_on_loop(request(padded)) is None
    assert table.review_on_loop(request(json.dumps(review).encode())) is not None
