"""The `/mutate` handler itself, without HTTP: a body in, a status and a document out.

The dispatch table (webhook.serving.dispatch) calls it on the event loop for
reviews the caches can answer without waiting, which saves two thread
hand-offs per warm review (docs/benchmarks.md, "Where the time goes"), and
in an admission thread for the others.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from webhook import metrics
from webhook.admission.admitter import Admitter, Outcome, Result
from webhook.core import wirejson
from webhook.core.review import AdmissionRequest, MalformedReview, parse_review
from webhook.core.wirejson import error_document

decisions = logging.getLogger("webhook.decisions")
# Pods that are not Jetstream's (or not a CREATE) are counted in metrics, logged only at DEBUG.
NOT_DECISIONS = frozenset({Outcome.PASS_THROUGH, Outcome.IGNORED})


class ResultRecorder(Protocol):
    """Keeps admissions for the status page (`webhook.insight.recent.RecentDecisions`).

    A protocol, so the admission layer does not import the insight layer above it.
    """

    def record_result(self, request: AdmissionRequest, result: Result) -> None: ...


def bad_request(message: str) -> tuple[int, dict[str, Any]]:
    metrics.child(metrics.ADMISSIONS, "malformed", "").inc()
    return 400, error_document(400, message)


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
    review = read_review(mimetype, body)
    if not isinstance(review, AdmissionRequest):
        return review
    result = admitter.admit(review, started)
    return answered(review, result, time.monotonic() - started, recorder)


def overloaded(
    admitter: Admitter, mimetype: str, body: bytes, waited: float
) -> tuple[int, dict[str, Any]]:
    """The answer to a review no admission thread could start within its deadline.

    Counted and logged (as a warning) like any other; not kept among the recent decisions.
    """
    review = read_review(mimetype, body)
    if not isinstance(review, AdmissionRequest):
        return review
    return answered(review, admitter.overloaded(review, waited), waited, None, overloaded=True)


def read_review(mimetype: str, body: bytes) -> AdmissionRequest | tuple[int, dict[str, Any]]:
    """The review in a request body, or the 400 answer that says what is wrong with it."""
    if mimetype != "application/json":
        return bad_request(f"Content-Type must be application/json, not {mimetype or 'missing'!r}")
    try:
        document = wirejson.loads(body)
    except RecursionError:
        return bad_request("the body is not valid JSON: nested too deeply")
    except ValueError as err:
        return bad_request(f"the body is not valid JSON: {str(err)[:200]}")
    try:
        return parse_review(document)
    except MalformedReview as err:
        return bad_request(f"not a valid AdmissionReview v1: {err}")


def answered(
    review: AdmissionRequest,
    result: Result,
    elapsed: float,
    recorder: ResultRecorder | None,
    overloaded: bool = False,
) -> tuple[int, dict[str, Any]]:
    """Count, record and log a decided review; its HTTP status and document."""
    reason = str(result.decision.reason) if result.decision else ""
    metrics.child(metrics.ADMISSIONS, str(result.outcome), reason).inc()
    metrics.child(metrics.ADMISSION_SECONDS, str(result.outcome)).observe(elapsed)
    if recorder is not None:
        recorder.record_result(review, result)  # skips dryRun and non-experiment pods
    if overloaded:
        level = logging.WARNING
    else:
        level = logging.DEBUG if result.outcome in NOT_DECISIONS else logging.INFO
    if decisions.isEnabledFor(level):
        fields = result.log_fields()
        fields.update(uid=review.uid, dry_run=review.dry_run, duration_ms=round(elapsed * 1000, 3))
        message = "admission %s: overloaded" if overloaded else "admission %s"
        decisions.log(level, message, result.outcome, extra={"fields": fields})
    return 200, result.response
