"""The baseline: the same gunicorn + TLS front end answering `allowed: true`.

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
from webhook.serving.httpwire import status_line
from webhook.serving.routes import HttpReply, Request, Route
from webhook.serving.server import RuntimeState, WebhookServer
from webhook.serving.tls import ReloadingContext

JSON = [("Content-Type", "application/json")]


class NoopRoutes:
    """The same loop-side path as the webhook's warm reviews (serving.dispatch), answering at once.

    What `jetstream-pin`'s own front end serves in the no-op baseline; the other
    fronts (bench.fronts) serve `noop_app`.
    """

    deadline_seconds: float | None = None

    def route(self, request: Request) -> Route:
        if request.head.path == "/mutate":
            return Route(on_loop=self.review)
        return Route(on_loop=lambda _r, _s: (status_line(200), JSON, b'{"status": "ok"}'))

    def review(self, request: Request, _saturated_for: float = 0.0) -> HttpReply:
        try:
            review = parse_review(wirejson.loads(request.body))
        except (ValueError, MalformedReview) as err:
            return status_line(400), JSON, json.dumps({"error": str(err)}).encode()
        return status_line(200), JSON, wirejson.dumps(allowed(review.uid))


def noop_routes(_config: Config, _state: RuntimeState, _tls: ReloadingContext) -> NoopRoutes:
    return NoopRoutes()


def noop_app(_config: Config, _state: RuntimeState) -> Flask:
    """The no-op as a WSGI app, for the fronts that serve one (bench.fronts)."""
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
    WebhookServer(config, RuntimeState.create(), noop_routes).run()


if __name__ == "__main__":
    main()
