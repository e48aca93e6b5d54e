"""The baseline: the same gunicorn + TLS + Flask stack answering `allowed: true`.

It parses the review exactly as the webhook does (JSON, AdmissionReview
shape) and returns at once, so the ratio against it isolates the cost of
deciding and patching.
"""

from __future__ import annotations

import json
import sys

from flask import Flask, Response, request

from webhook.config import Config, load_config
from webhook.core import wirejson
from webhook.core.review import MalformedReview, allowed, parse_review
from webhook.serving.app import HOOKS_KEY
from webhook.serving.front import Answer, PlainHooks
from webhook.serving.httpwire import Head, status_line
from webhook.serving.server import RuntimeState, WebhookServer
from webhook.serving.tls import ReloadingContext


class NoopHooks(PlainHooks):
    """The same loop-side path as the webhook's warm reviews (serving.hooks), answering at once."""

    def inline(self, head: Head, body: bytes, arrived: float) -> Answer | None:
        if head.path != "/mutate":
            return None
        try:
            review = parse_review(wirejson.loads(body))
        except (ValueError, MalformedReview):
            return None  # Flask's route answers the 400
        return (
            status_line(200),
            [("Content-Type", "application/json")],
            wirejson.dumps(allowed(review.uid)),
        )


def noop_app(_config: Config, _state: RuntimeState, _tls: ReloadingContext | None = None) -> Flask:
    app = Flask("noop")
    app.extensions[HOOKS_KEY] = NoopHooks()

    @app.post("/mutate")
    def mutate() -> Response:
        try:
            review = parse_review(wirejson.loads(request.get_data()))
        except (ValueError, MalformedReview) as err:
            return Response(json.dumps({"error": str(err)}), 400, mimetype="application/json")
        return Response(wirejson.dumps(allowed(review.uid)), mimetype="application/json")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response('{"status": "ok"}', mimetype="application/json")

    return app


def main() -> None:
    config = load_config(sys.argv[1])
    WebhookServer(config, RuntimeState.create(), noop_app).run()


if __name__ == "__main__":
    main()
