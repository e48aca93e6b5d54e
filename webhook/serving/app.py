"""The Flask application factory: thin routes over the admission handler.

No module-level state: `create_app` takes everything it serves, so tests
build as many apps as they like. Anything a client sends that is not a
well-formed AdmissionReview gets an HTTP 400 with a JSON error saying why;
nothing a client sends produces a 500.

One app serves two listeners: the admission port (`/mutate`, probes) and the
admin port (the admin blueprint: status page, later metrics). A request is
routed by the port it arrived on (gunicorn sets SERVER_PORT from the
listening socket, not from the Host header), so the admin pages are never
reachable on the admission path and `/mutate` never on the admin port.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, abort, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from webhook.admission import handler
from webhook.admission.admitter import Admitter
from webhook.core import wirejson
from webhook.serving.front import ARRIVED
from webhook.serving.hooks import AppHooks

log = logging.getLogger(__name__)

Readiness = Callable[[], tuple[bool, str]]
HOOKS_KEY = "jetstream_pin.front"  # webhook.serving.worker looks the hooks up here


def always_ready() -> tuple[bool, str]:
    return True, "ready"


@dataclass(frozen=True)
class Listeners:
    """Which port serves what."""

    webhook_port: int
    admin_port: int


def _discard_body(environ: dict[str, Any], limit: int) -> None:
    """Read an oversized body away so the client gets its 400 instead of a reset.

    Beyond `limit` the connection is left to be closed: a client sending that
    much is not an API server.
    """
    stream = environ.get("wsgi.input")
    remaining = min(int(environ.get("CONTENT_LENGTH") or 0), limit)
    while stream is not None and remaining > 0:
        chunk = stream.read(min(remaining, 65536))
        if not chunk:
            break
        remaining -= len(chunk)


def create_app(
    admitter: Admitter,
    max_request_bytes: int = 6 * 1024 * 1024,
    readiness: Readiness = always_ready,
    recorder: handler.ResultRecorder | None = None,
    admin: Blueprint | None = None,
    listeners: Listeners | None = None,
) -> Flask:
    app = Flask("jetstream-pin")
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes
    # Probes, and reviews the caches answer at once, on the front's loop:
    app.extensions[HOOKS_KEY] = AppHooks(admitter, readiness, recorder, max_request_bytes)
    if admin is not None:
        if listeners is None:
            raise ValueError("the admin pages need Listeners: they are served on their own port")
        app.register_blueprint(admin)

    def reply(body: Any, status: int = 200) -> Response:
        return Response(wirejson.dumps(body), status=status, mimetype="application/json")

    def bad_request(message: str) -> Response:
        code, body = handler.bad_request(message)
        return reply(body, code)

    if listeners is not None:
        admin_name = admin.name if admin is not None else None

        @app.before_request
        def route_by_port() -> None:
            for_admin = admin_name is not None and request.blueprint == admin_name
            wanted = listeners.admin_port if for_admin else listeners.webhook_port
            if request.environ.get("SERVER_PORT") != str(wanted):
                abort(404)

    @app.post("/mutate")
    def mutate() -> Response:
        arrived = request.environ.get(ARRIVED)
        started = arrived if isinstance(arrived, float) else time.monotonic()
        body = request.get_data(cache=False)
        code, answer = handler.mutate(admitter, recorder, request.mimetype, body, started)
        return reply(answer, code)

    @app.get("/healthz")
    def healthz() -> Response:
        return reply({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        ready, why = readiness()
        return reply(
            {"status": "ready" if ready else "not ready", "detail": why}, 200 if ready else 503
        )

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_: RequestEntityTooLarge) -> Response:
        _discard_body(request.environ, limit=4 * max_request_bytes)
        return bad_request(f"the body is larger than the limit of {max_request_bytes} bytes")

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        code = err.code or 400
        return reply({"error": err.description or err.name, "code": code}, code)

    @app.errorhandler(Exception)
    def unexpected(err: Exception) -> Response:  # pragma: no cover - a bug if reached
        log.exception("unhandled error on %s", request.path)
        return reply({"error": "internal error", "code": 500}, 500)

    return app
