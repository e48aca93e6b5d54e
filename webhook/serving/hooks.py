"""What the front end asks of the app on its event loop, never in an admission thread.

Probes must answer however busy the admission threads are, and report real
state: liveness is the loop answering at all; readiness is the app's own
(not draining, sources loaded) and the admission threads not all busy for
longer than a deadline. A review that could not get a thread within its
deadline is answered here with the failure policy, at once.

A review whose decision the caches can give at once is decided here too
(`inline`, without waiting: webhook.sources.nowait): it is CPU work only,
and skipping the hand-off to a thread and back, and Flask, halves what a
warm review costs (docs/benchmarks.md). One that would wait on a backend
raises NeedsLookup before any side effect and goes to an admission thread,
which decides it from the start.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from webhook import metrics
from webhook.admission import handler
from webhook.admission.admitter import Admitter
from webhook.core import wirejson
from webhook.core.review import MalformedReview, parse_review
from webhook.serving.front import Answer
from webhook.serving.httpwire import Head, json_error, status_line
from webhook.sources.nowait import NeedsLookup, without_waiting

decisions = logging.getLogger("webhook.decisions")
Readiness = Callable[[], tuple[bool, str]]
JSON = [("Content-Type", "application/json")]


class AppHooks:
    def __init__(
        self,
        admitter: Admitter,
        readiness: Readiness,
        recorder: handler.ResultRecorder | None = None,
        max_body_bytes: int = 6 * 1024 * 1024,
    ) -> None:
        self.admitter = admitter
        self.readiness = readiness
        self.recorder = recorder
        self.max_body_bytes = max_body_bytes
        self.deadline_seconds = admitter.deadline_seconds

    def inline(self, head: Head, body: bytes, arrived: float) -> Answer | None:
        """The answer to POST /mutate if it needs no wait; None: let an admission thread do it.

        Only what Flask would answer the same way: a JSON body within the limit,
        and only when every source is behind a cache that can refuse to wait.
        """
        mimetype = head.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if (
            not self.admitter.resolver.never_waits
            or head.path != "/mutate"
            or mimetype != "application/json"
            or head.content_length > self.max_body_bytes
        ):
            return None
        try:
            code, document = without_waiting(
                lambda: handler.mutate(self.admitter, self.recorder, mimetype, body, arrived)
            )
        except NeedsLookup:
            return None
        return status_line(code), JSON, wirejson.dumps(document)

    def probe(self, path: str, saturated_for: float) -> tuple[int, bytes]:
        if path == "/healthz":
            return 200, b'{"status": "ok"}'
        ready, why = self.readiness()
        limit = self.deadline_seconds
        if ready and limit is not None and saturated_for > limit:
            ready, why = False, f"every admission thread busy for {saturated_for:.1f}s"
        body = {"status": "ready" if ready else "not ready", "detail": why}
        return (200 if ready else 503), json.dumps(body).encode()

    def overloaded(self, body: bytes, waited: float) -> Answer:
        try:
            review = parse_review(wirejson.loads(body))
        except (ValueError, RecursionError, MalformedReview) as err:
            metrics.ADMISSIONS.labels("malformed", "").inc()
            message = f"not a valid AdmissionReview v1: {str(err)[:200]}"
            return status_line(400), JSON, json_error(400, message)
        result = self.admitter.overloaded(review, waited)
        metrics.ADMISSIONS.labels(str(result.outcome), "").inc()
        metrics.ADMISSION_SECONDS.labels(str(result.outcome)).observe(waited)
        fields = result.log_fields()
        fields.update(uid=review.uid, duration_ms=round(waited * 1000, 3))
        decisions.warning("admission %s: overloaded", result.outcome, extra={"fields": fields})
        return status_line(200), JSON, wirejson.dumps(result.response)
