"""The admin port's Flask app: the admin blueprint (status page, its JSON, metrics).

Flask serves only these pages, where its routing and Jinja2 earn their
place; every other request is answered by the dispatch table
(webhook.serving.dispatch), which hands the admin port's other paths to
this app in an admission thread. No module-level state: `admin_app` takes
what it serves, so tests build as many apps as they like. An error is
answered as JSON saying why; nothing a client sends produces a 500.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import HTTPException

from webhook.core import wirejson
from webhook.core.wirejson import error_document

log = logging.getLogger(__name__)


def admin_app(admin: Blueprint) -> Flask:
    app = Flask("jetstream-pin")
    app.register_blueprint(admin)

    def reply(code: int, message: str) -> Response:
        body = wirejson.dumps(error_document(code, message))
        return Response(body, status=code, mimetype="application/json")

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        return reply(err.code or 400, err.description or err.name)

    @app.errorhandler(Exception)
    def unexpected(err: Exception) -> Response:  # pragma: no cover - a bug if reached
        log.exception("unhandled error on %s", request.path)
        return reply(500, "internal error")

    return app
