"""Every request's one way in: a table from (port, method, path) to what answers it.

The front end (webhook.serving.front) reads a request and asks `route` how
to answer it; nothing else routes. A route has up to two ways to answer:

- `on_loop`: on the worker's event loop, at once, never waiting on a
  backend: the probes, and a review the caches can decide without waiting
  (webhook.sources.nowait). None from it: the request goes on to
- `in_thread`: in one of the worker's admission threads: a review that needs
  a lookup, and the admin port's pages (the Flask app of webhook.serving.app).

The probes answer on both ports, to GET and HEAD, the same way: liveness is
the loop answering at all; readiness is the app's own (not draining, sources
loaded) and the admission threads not all busy for longer than the deadline.
A review that could not get a thread within its deadline gets the failure
policy's answer (`overloaded`). A path the table does not know gets a JSON
404 (405 for a known path and another method); request bodies over the limit
never reach here (the front end refuses them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from webhook.admission import handler
from webhook.admission.admitter import Admitter
from webhook.core import wirejson
from webhook.serving.httpwire import environ, json_error, status_line
from webhook.serving.routes import ADMIN, ADMISSION, HttpReply, Request, Route, Wsgi, call_wsgi
from webhook.sources.nowait import NeedsLookup, without_waiting

# Whether the app is ready to serve, and why not (the readiness probe's detail).
Readiness = Callable[[], tuple[bool, str]]

JSON = [("Content-Type", "application/json")]


def always_ready() -> tuple[bool, str]:
    return True, "ready"


def json_reply(code: int, document: Any) -> HttpReply:
    return status_line(code), JSON, wirejson.dumps(document)


def error_reply(code: int, message: str) -> HttpReply:
    return status_line(code), JSON, json_error(code, message)


class Dispatch:
    """The webhook's routes; what the worker's front end serves."""

    def __init__(
        self,
        admitter: Admitter,
        readiness: Readiness = always_ready,
        recorder: handler.ResultRecorder | None = None,
        admin: Wsgi | None = None,
        loop_review_max_bytes: int = 64 * 1024,
    ) -> None:
        """`admin`: the admin port's pages (None: it serves the probes only).
        `loop_review_max_bytes`: a larger review is never decided on the loop."""
        self.admitter = admitter
        self.readiness = readiness
        self.recorder = recorder
        self.admin = admin
        self.loop_review_max_bytes = loop_review_max_bytes
        self.deadline_seconds = admitter.deadline_seconds
        self.table: dict[tuple[str, str, str], Route] = {}
        for listener in (ADMISSION, ADMIN):
            for method in ("GET", "HEAD"):  # the kubelet's probes; HEAD for a bare check
                self.table[(listener, method, "/healthz")] = Route(on_loop=self.live)
                self.table[(listener, method, "/readyz")] = Route(on_loop=self.ready)
        self.table[(ADMISSION, "POST", "/mutate")] = Route(
            on_loop=self.review_on_loop, in_thread=self.review, overloaded=self.overloaded
        )
        self._paths = {(listener, path) for listener, _, path in self.table}
        self._admin_page = Route(in_thread=self.admin_page)
        self._not_allowed = Route(on_loop=lambda _r, _s: error_reply(405, "method not allowed"))
        self._not_found = Route(on_loop=lambda _r, _s: error_reply(404, "not found"))

    def route(self, request: Request) -> Route:
        """The table's route; else the admin pages (admin port), else a JSON 405 or 404."""
        head = request.head
        found = self.table.get((request.listener, head.method, head.path))
        if found is not None:
            return found
        if request.listener == ADMIN and self.admin is not None:
            return self._admin_page
        if (request.listener, head.path) in self._paths:
            return self._not_allowed
        return self._not_found

    def live(self, _request: Request, _saturated_for: float) -> HttpReply:
        return status_line(200), JSON, b'{"status": "ok"}'

    def ready(self, _request: Request, saturated_for: float) -> HttpReply:
        ready, why = self.readiness()
        limit = self.deadline_seconds
        if ready and limit is not None and saturated_for > limit:
            ready, why = False, f"every admission thread busy for {saturated_for:.1f}s"
        body = {"status": "ready" if ready else "not ready", "detail": why}
        return status_line(200 if ready else 503), JSON, json.dumps(body).encode()

    def review_on_loop(self, request: Request, _saturated_for: float = 0.0) -> HttpReply | None:
        """The answer if the caches give it without waiting; None: an admission thread decides.

        Every source can refuse to wait (the resolver admits no other, see
        webhook.sources.nowait). Only for a review up to `loop_review_max_bytes`: a
        larger one would hold the loop.
        """
        if len(request.body) > self.loop_review_max_bytes:
            return None
        try:
            return json_reply(*without_waiting(lambda: self._mutate(request)))
        except NeedsLookup:
            return None

    def review(self, request: Request) -> HttpReply:
        return json_reply(*self._mutate(request))

    def _mutate(self, request: Request) -> tuple[int, dict[str, Any]]:
        return handler.mutate(
            self.admitter, self.recorder, request.mimetype, request.body, request.arrived
        )

    def overloaded(self, request: Request, waited: float) -> HttpReply:
        answer = handler.overloaded(self.admitter, request.mimetype, request.body, waited)
        return json_reply(*answer)

    def admin_page(self, request: Request) -> HttpReply:
        assert self.admin is not None
        env = environ(request.head, request.body, request.port, request.peer, {})
        return call_wsgi(self.admin, env)
