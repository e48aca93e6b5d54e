"""What the front end asks of what it serves: a request in, a route out, an HTTP reply back.

The front end (webhook.serving.front) only reads and writes bytes; it answers
each complete request by the `Route` its `Routes` give (the webhook's are the
table of webhook.serving.dispatch). Kept apart from that table so the front
end, and whatever else it serves (the benchmark's no-op), need not import
the admission layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from webhook.serving.httpwire import Head

# An HTTP answer as the front end writes it: status line, headers, body.
HttpReply = tuple[str, list[tuple[str, str]], bytes]
Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

ADMISSION = "admission"  # server.port: /mutate and the probes
ADMIN = "admin"  # server.adminPort: the status page, metrics, and the probes


@dataclass(frozen=True)
class Request:
    """One complete request, as the front end read it."""

    listener: str  # ADMISSION or ADMIN
    port: int
    head: Head
    body: bytes
    peer: Any
    arrived: float  # time.monotonic() when its head arrived

    @property
    def mimetype(self) -> str:
        content_type = self.head.headers.get("content-type", "")
        return content_type.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Route:
    """How one kind of request is answered.

    `on_loop` is tried first, on the event loop, with how long every admission
    thread has been busy; it must never wait. When there is none, or it gives
    None, `in_thread` answers in an admission thread; if no thread starts it
    within the admission deadline (POST on the admission port), `overloaded`
    answers, with how long the request waited.
    """

    on_loop: Callable[[Request, float], HttpReply | None] | None = None
    in_thread: Callable[[Request], HttpReply] | None = None
    overloaded: Callable[[Request, float], HttpReply] | None = None


class Routes(Protocol):
    """What the front end serves."""

    # The admission deadline (None: none): a review waits no longer for a thread or a body.
    deadline_seconds: float | None

    def route(self, request: Request) -> Route: ...


def call_wsgi(app: Wsgi, env: dict[str, Any]) -> HttpReply:
    """Run a WSGI app for one request and collect its whole answer (in an admission thread)."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], _exc: Any = None) -> Any:
        started[:] = [status, headers]
        return _no_write

    result = app(env, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return started[0], list(started[1]), body


def _no_write(_data: bytes) -> None:
    raise RuntimeError("the write() callable of WSGI is not supported")
