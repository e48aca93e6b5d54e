"""HTTP/1.1 on the wire, as the front end needs it: a request head in, a response out.

Pure functions over bytes, so the parsing rules (what is refused and why)
are tested without a socket. Only what an API server, a kubelet probe and
Prometheus send is accepted: a request line, headers, a `Content-Length`
body. Chunked request bodies are refused (411): the API server always sends
a length.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class BadRequest(Exception):
    """A head the server refuses; `status` is the answer (400, 411, 431, 505)."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


@dataclass(frozen=True)
class Head:
    method: str
    target: str
    version: str
    headers: Mapping[str, str]  # lowercased names; repeated ones joined with ", "

    @property
    def content_length(self) -> int:
        return int(self.headers.get("content-length", "0"))

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    @property
    def expects_continue(self) -> bool:
        return self.headers.get("expect", "").lower() == "100-continue"

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


def parse_head(data: bytes) -> Head:
    """The request line and headers (`data` ends with the blank line)."""
    try:
        text = data.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
        raise BadRequest(400, "undecodable head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    if method not in METHODS:
        raise BadRequest(400, f"unsupported method {method[:20]!r}")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(505, "only HTTP/1.1 and HTTP/1.0 are served")
    if not target.startswith("/"):
        if not target.startswith(("http://", "https://")):
            raise BadRequest(400, "malformed request target")
        parts_of = urlsplit(target)
        target = (parts_of.path or "/") + (f"?{parts_of.query}" if parts_of.query else "")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            raise BadRequest(400, "malformed header line")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if "transfer-encoding" in headers:
        raise BadRequest(411, "chunked request bodies are not accepted: send Content-Length")
    length = headers.get("content-length", "0")
    if not length.isdigit() or len(length) > 12:
        raise BadRequest(400, "malformed Content-Length")
    return Head(method, target, version, headers)


def environ(
    head: Head, body: bytes, server_port: int, peer: Any, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """The WSGI environ of one request (PEP 3333)."""
    path, _, query = head.target.partition("?")
    env: dict[str, Any] = {
        "REQUEST_METHOD": head.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "jetstream-pin",
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": head.version,
        "REMOTE_ADDR": peer[0] if isinstance(peer, tuple) and peer else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in head.headers.items():
        if name == "content-type":
            env["CONTENT_TYPE"] = value
        elif name == "content-length":
            env["CONTENT_LENGTH"] = value
        else:
            env["HTTP_" + name.upper().replace("-", "_")] = value
    env.update(extra)
    return env


def response(
    status: str, headers: Iterable[tuple[str, str]], body: bytes, keep_alive: bool
) -> bytes:
    """One response: status line, the headers given plus length and connection, body."""
    lines = [f"HTTP/1.1 {status}"]
    for name, value in headers:
        if name.lower() not in ("content-length", "connection", "transfer-encoding"):
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@lru_cache(maxsize=64)
def status_line(code: int) -> str:
    """Remembered: the enum lookup took a microsecond of every answer."""
    return f"{code} {HTTPStatus(code).phrase}"


def json_error(code: int, message: str) -> bytes:
    """The error body the app uses too: `{"error": ..., "code": ...}`."""
    return json.dumps({"error": message, "code": code}).encode()
