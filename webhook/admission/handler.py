"""The `/mutate` handler itself, without Flask: a body in, a status and a document out.

Flask's route calls it in an admission thread; the front end's hooks call it
on the event loop for reviews the caches can answer at once (see
`webhook.serving.hooks`), which saves two thread hand-offs and Flask's request
machinery per warm review (docs/benchmarks.md, "Where the time goes").
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from webhook import metrics
from webhook.admission.admitter import Admitter, Outcome, Result
from webhook.core import wirejson
from webhook.core.review import AdmissionRequest, MalformedReview, parse_review

decisions = logging.getLogger("webhook.decisions")
# Pods that are not Jetstream's (or not a CREATE) are counted in metrics, logged only at DEBUG.
NOT_DECISIONS = frozenset({Outcome.PASS_THROUGH, Outcome.IGNORED})


class ResultRecorder(Protocol):
    """Keeps admissions for the status page (`webhook.insight.recent.DecisionLog`).

    A protocol, so the admission layer does not import the insight layer above it.
    """

    def record_result(self, request: AdmissionRequest, result: Result) -> None: ...


def bad_request(message: str) -> tuple[int, dict[str, Any]]:
    metrics.child(metrics.ADMISSIONS, "malformed", "").inc()
    return 400, {"error": message, "code": 400}


def mutate(
    admitter: Admitter,
    recorder: ResultRecorder | None,
    mimetype: str,
    body: bytes,
    started: float,
) -> tuple[int, dict[str, Any]]:
    """Decide one review; counted, logged and recorded.

    Raises NeedsLookup only inside `without_waiting` (webhook.sources.nowait).
    """
    if mimetype != "application/json":
        return bad_request(f"Content-Type must be application/json, not {mimetype or 'missing'!r}")
    try:
        document = wirejson.loads(body)
    except RecursionError:
        return bad_request("the body is not valid JSON: nested too deeply")
    except ValueError as err:
        return bad_request(f"the body is not valid JSON: {str(err)[:200]}")
    try:
        review = parse_review(document)
    except MalformedReview as err:
        return bad_request(f"not a valid AdmissionReview v1: {err}")
    result = admitter.admit(review, started)
    elapsed = time.monotonic() - started
    reason = str(result.decision.reason) if result.decision else ""
    metrics.child(metrics.ADMISSIONS, str(result.outcome), reason).inc()
    metrics.child(metrics.ADMISSION_SECONDS, str(result.outcome)).observe(elapsed)
    if recorder is not None:
        recorder.record_result(review, result)  # skips dryRun and non-experiment pods
    level = logging.DEBUG if result.outcome in NOT_DECISIONS else logging.INFO
    if decisions.isEnabledFor(level):
        fields = result.log_fields()
        fields.update(uid=review.uid, dry_run=review.dry_run, duration_ms=round(elapsed * 1000, 3))
        decisions.log(level, "admission %s", result.outcome, extra={"fields": fields})
    return 200, result.response
