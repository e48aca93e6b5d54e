"""What the front end's loop answers itself: probes, the overloaded review, warm reviews."""

from __future__ import annotations

import json
import time

from harness.builders import EXAMPLES, argo_pod, review_of
from webhook.config import load_config
from webhook.core.review import parse_review
from webhook.serving.hooks import AppHooks
from webhook.serving.httpwire import Head, parse_head
from webhook.wiring import Wiring


def hooks(ready: bool = True) -> AppHooks:
    admitter = Wiring(load_config(EXAMPLES / "config.yaml")).admitter
    return AppHooks(admitter, lambda: (ready, "ready" if ready else "draining: shutting down"))


def test_liveness_answers_whatever_the_state() -> None:
    assert hooks(ready=False).probe("/healthz", saturated_for=100.0)[0] == 200


def test_readiness_reports_draining_and_a_long_saturation() -> None:
    assert hooks().probe("/readyz", saturated_for=0.0)[0] == 200
    assert hooks().probe("/readyz", saturated_for=3.0)[0] == 200  # under the 8 s deadline
    code, body = hooks().probe("/readyz", saturated_for=9.0)
    assert code == 503
    assert "every admission thread busy" in json.loads(body)["detail"]
    code, body = hooks(ready=False).probe("/readyz", saturated_for=0.0)
    assert (code, json.loads(body)["detail"]) == (503, "draining: shutting down")


def test_an_overloaded_experiment_pod_gets_the_failure_policy() -> None:
    review = review_of(argo_pod("my-experiment"))
    status, _, body = hooks().overloaded(json.dumps(review).encode(), waited=8.0)
    answer = json.loads(body)["response"]
    assert status.startswith("200")
    assert answer["uid"] == review["request"]["uid"]
    assert (answer["allowed"], answer["status"]["code"]) == (False, 503)
    assert "every admission thread was busy" in answer["status"]["message"]


def test_an_overloaded_pod_that_is_not_an_experiment_still_passes() -> None:
    review = review_of(argo_pod(None))
    _, _, body = hooks().overloaded(json.dumps(review).encode(), waited=8.0)
    assert json.loads(body)["response"]["allowed"] is True


def test_an_overloaded_malformed_body_is_a_400() -> None:
    status, _, body = hooks().overloaded(b"{", waited=8.0)
    assert status.startswith("400")
    assert "not a valid AdmissionReview" in json.loads(body)["error"]


def _head(body: bytes, content_type: str = "application/json") -> Head:
    return parse_head(
        f"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
    )


def test_a_review_the_caches_can_answer_is_decided_on_the_loop_and_no_other() -> None:
    loop_side = hooks()
    review = review_of(argo_pod("my-experiment"))
    body = json.dumps(review).encode()
    assert loop_side.inline(_head(body), body, time.monotonic()) is None  # caches cold: a thread
    loop_side.admitter.admit(parse_review(review))  # what the admission thread does
    answer = loop_side.inline(_head(body), body, time.monotonic())
    assert answer is not None
    status, _, payload = answer
    assert status.startswith("200")
    assert json.loads(payload)["response"]["patchType"] == "JSONPatch"
    assert (
        loop_side.inline(_head(body, "text/plain"), body, time.monotonic()) is None
    )  # Flask's 400
