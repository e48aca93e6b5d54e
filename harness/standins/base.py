"""The server under every stand-in: one real HTTP(S) server on loopback per backend.

A stand-in is a real HTTP server on 127.0.0.1 with a free port, running in a
thread (`serving`). It is given a `route` (a backend's `<Backend>StandIn`, or a
function); it records every request (`StandInServer`), so tests
can count calls and inspect headers, and it can be told to misbehave
(delay, fail, hang) to exercise the failure policy across a real wire.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0  # send the body DRIP_BYTES at a time, this many seconds apart
    hang: float = 0.0  # after the headers, wait this long before the body

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode() if self.body is not None else b""


Route = Callable[[Request], Reply]
DRIP_BYTES = 10


def json_reply(body: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, body, {"Content-Type": "application/json", **headers})


class StandInServer:
    """A running stand-in; `requests` lists what it received, `fault` overrides every answer."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.fault: Reply | None = None
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.scheme = "http"

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def calls(self, path_prefix: str = "") -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def record(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
        reply = self.fault or self.route(request)
        if reply.delay:
            time.sleep(reply.delay)
        return reply


def _handler(stand_in: StandInServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, the body waits for
        # the client's delayed ACK (~40 ms a response on Linux), which skews timings.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length) if length else b"",
            )
            reply = stand_in.record(request)
            body = reply.encoded()
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self._send_body(reply, body)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):  # client went away
                pass

        def _send_body(self, reply: Reply, body: bytes) -> None:
            if reply.hang:
                self.wfile.flush()
                time.sleep(reply.hang)
            if not reply.drip:
                self.wfile.write(body)
                return
            for start in range(0, len(body), DRIP_BYTES):
                self.wfile.write(body[start : start + DRIP_BYTES])
                self.wfile.flush()
                time.sleep(reply.drip)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def serving(route: Route, tls: tuple[Path, Path] | None = None) -> Iterator[StandInServer]:
    """Run a stand-in for the duration of the block (HTTPS when given a cert and key)."""
    stand_in = StandInServer(route)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stand_in))
    server.daemon_threads = True
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        stand_in.scheme = "https"
    stand_in.server = server
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
