"""The baseline: the same gunicorn + TLS + Flask stack answering `allowed: true`.

It parses the review exactly as the webhook does (JSON, AdmissionReview
shape) and returns at once, so the ratio against it isolates the cost of
deciding and patching.
"""

from __future__ import annotations

import json
import sys

from flask import Flask, Response, request

from webhook import wirejson
from webhook.config import Config, load_config
from webhook.review import MalformedReview, allowed, parse_review
from webhook.server import RuntimeState, WebhookServer


def noop_app(_config: Config, _state: RuntimeState) -> Flask:
    app = Flask("noop")

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
