"""The admin port's pages, as one Flask blueprint: status page, its JSON, Prometheus metrics.

`webhook.serving.app.admin_app` serves this blueprint, and the dispatch table
hands it only requests that arrived on `server.adminPort`, never the
admission port's. The HTML page carries a Content-Security-Policy that allows
no script and no external resource at all, only its own inline stylesheet
(by hash), so even a slug that slipped past escaping could not run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping

from flask import Blueprint, Response, redirect

from webhook import metrics
from webhook.insight.report import report_json
from webhook.insight.status import StatusSource
from webhook.insight.status_page import STYLE, render_status

BLUEPRINT = "admin"
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
PAGE_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def admin_blueprint(
    status: StatusSource,
    history_ages: Callable[[], Mapping[str, float]] = dict,
    certificate_expiry: Callable[[], float | None] | None = None,
    listing_ages: Callable[[], Mapping[str, float]] = dict,
) -> Blueprint:
    """`history_ages` / `listing_ages`: seconds since each image history / enrollment
    listing was last refreshed; `certificate_expiry`: when the certificate served now
    expires, which every scrape reports (alerts fire on it well before it lapses)."""
    admin = Blueprint(BLUEPRINT, __name__)

    @admin.get("/metrics")
    def prometheus() -> Response:
        for repository, age in history_ages().items():
            metrics.IMAGE_HISTORY_AGE.labels(repository).set(age)
        for source, age in listing_ages().items():
            metrics.ENROLLMENT_LISTING_AGE.labels(source).set(age)
        not_after = certificate_expiry() if certificate_expiry is not None else None
        if not_after is not None:
            metrics.CERTIFICATE_EXPIRY.labels("serving").set(not_after)
        return Response(
            metrics.exposition(), mimetype=None, headers={"Content-Type": metrics.CONTENT_TYPE}
        )

    @admin.get("/")
    def index() -> Response:
        return redirect("/status", code=302)  # type: ignore[return-value]

    @admin.get("/status")
    def status_page() -> Response:
        html = render_status(status.current())
        return Response(html, mimetype="text/html", headers=PAGE_HEADERS)

    @admin.get("/status.json")
    def status_json() -> Response:
        current = status.current()
        body = {
            "settings": current.settings,
            "report": report_json(current.report) if current.report else None,
            "error": current.error or None,
            "recentDecisions": [d.to_json() for d in current.decisions],
            "recentDecisionsError": current.decisions_error or None,
        }
        return Response(json.dumps(body), mimetype="application/json", headers=PAGE_HEADERS)

    return admin
