"""RFC 9112's rules for a request head, one row per shape, with the answer the server owes.

Shared by the parser's table test (`tests/unit/test_rfc9112.py`, no socket) and
the same rows sent to the real server (`tests/integration/test_front.py`).
Every forbidden shape is answered with its status and the connection is
closed; the rows expecting 200 are the leniencies RFC 9112 allows and the
server keeps (they show the table does not pass by refusing everything).
"""

from __future__ import annotations

from dataclasses import dataclass

# A valid request that a parser blind to the first line's framing would serve
# as a second request (the body bytes of the smuggling rows).
SMUGGLED = b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
PROBE = b"GET /healthz HTTP/1.1\r\n"


@dataclass(frozen=True)
class Shape:
    name: str
    wire: bytes  # the whole request as a client sends it
    status: int  # the answer owed: 200 served, else refused and the connection closed
    rule: str  # where RFC 9112 (or RFC 9110) says so

    @property
    def refused(self) -> bool:
        return self.status >= 400


def _probe(*lines: bytes) -> bytes:
    return PROBE + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def _post(*lines: bytes, body: bytes = b"") -> bytes:
    head = b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    return head + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body


SHAPES = [
    # Line endings (2.2): CRLF only; a bare CR or LF is refused, never taken as an end.
    Shape("bare LF inside a header line hides a Content-Length",
          _post(b"X-A: 1\nContent-Length: %d" % len(SMUGGLED), body=SMUGGLED), 400, "2.2"),
    Shape("bare LF ends the request line", b"GET /healthz HTTP/1.1\nHost: x\r\n\r\n", 400, "2.2"),
    Shape("bare LF ends every line", b"GET /healthz HTTP/1.1\nHost: x\n\n", 400, "2.2"),
    Shape("bare CR inside a value", _probe(b"Host: x", b"X-A: a\rb"), 400, "2.2"),
    Shape("bare CR ends a line", _probe(b"Host: x\r", b"X-A: a"), 400, "2.2"),
    # Field values (5.5): no NUL, CR, LF or other control character but HTAB.
    Shape("NUL inside a value", _probe(b"Host: x", b"X-A: a\x00b"), 400, "5.5"),
    Shape("control character inside a value", _probe(b"Host: x", b"X-A: a\x01b"), 400, "5.5"),
    Shape("DEL inside a value", _probe(b"Host: x", b"X-A: a\x7fb"), 400, "5.5"),
    # Field names (5.1): a token, straight before the colon.
    Shape("space inside a header name", _probe(b"Host: x", b"X A: b"), 400, "5.1"),
    Shape("separator inside a header name", _probe(b"Host: x", b"X(A): b"), 400, "5.1"),
    Shape("non-ASCII header name", _probe(b"Host: x", b"X\xe9: b"), 400, "5.1"),
    Shape("empty header name", _probe(b"Host: x", b": b"), 400, "5.1"),
    Shape("whitespace between name and colon", _probe(b"Host : x"), 400, "5.1"),
    Shape("header line without a colon", _probe(b"Host: x", b"X-A"), 400, "5.1"),
    Shape("obs-fold continues a value", _probe(b"Host: x", b"X-A: a", b" b"), 400, "5.2"),
    Shape("whitespace before the first header",
          b"GET /healthz HTTP/1.1\r\n X-A: b\r\nHost: x\r\n\r\n", 400, "2.2"),
    # Host (3.2): exactly one in HTTP/1.1, with a valid value.
    Shape("HTTP/1.1 without Host", _probe(), 400, "3.2"),
    Shape("two Host lines", _probe(b"Host: x", b"Host: y"), 400, "3.2"),
    Shape("Host that is not a host", _probe(b"Host: x/y"), 400, "3.2"),
    # Message framing (6.1, 6.3): ASCII digits, one length, no length beside a coding.
    Shape("Content-Length in non-ASCII digits", _post(b"Content-Length: \xb2", body=b"{}"),
          400, "6.3"),
    Shape("Content-Length with a sign", _post(b"Content-Length: +2", body=b"{}"), 400, "6.3"),
    Shape("Content-Length listing two values", _post(b"Content-Length: 2, 3", body=b"{}"),
          400, "6.3"),
    Shape("two Content-Length lines", _post(b"Content-Length: 2", b"Content-Length: 3",
                                            body=b"{}"), 400, "6.3"),
    Shape("one length repeated (refused, as 6.3 allows)",
          _post(b"Content-Length: 2", b"Content-Length: 2", body=b"{}"), 400, "6.3"),
    Shape("Transfer-Encoding beside Content-Length",
          _post(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
          400, "6.1"),
    Shape("Transfer-Encoding in HTTP/1.0",
          b"POST /mutate HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "6.1"),
    Shape("chunked body (not accepted: the API server sends a length)",
          _post(b"Transfer-Encoding: chunked", body=b"2\r\n{}\r\n0\r\n\r\n"), 411, "6.1"),
    # The request line (3): method SP target SP version, nothing else.
    Shape("two spaces after the method", b"GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "3"),
    Shape("tabs for spaces", b"GET\t/healthz\tHTTP/1.1\r\nHost: x\r\n\r\n", 400, "3"),
    Shape("space inside the target", b"GET /heal thz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "3.2"),
    Shape("NUL inside the target", b"GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "3.2"),
    Shape("non-ASCII target", b"GET /heal\xe9thz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "3.2"),
    Shape("fragment in the target", b"GET /healthz#x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "3.2"),
    Shape("asterisk target for GET", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "3.2.4"),
    Shape("lowercase version", b"GET /healthz http/1.1\r\nHost: x\r\n\r\n", 400, "2.3"),
    Shape("HTTP/2.0 as text", b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505, "2.3"),
    Shape("method that is not a token", b"GE(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "3.1"),
    Shape("method not implemented", b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501,
          "RFC 9110 9.1"),
    # What RFC 9112 allows and the server accepts.
    Shape("an empty line before the request line", b"\r\n" + _probe(b"Host: x"), 200, "2.2"),
    Shape("whitespace around a value", _probe(b"Host: \t x \t"), 200, "5.5"),
    Shape("obs-text inside a value", _probe(b"Host: x", b"X-A: caf\xe9"), 200, "5.5"),
    Shape("HTTP/1.0 without Host", b"GET /healthz HTTP/1.0\r\n\r\n", 200, "3.2"),
    Shape("absolute-form target", b"GET https://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200,
          "3.2.2"),
    Shape("header names in any case", _probe(b"HOST: x"), 200, "5.1"),
    Shape("empty Host", _probe(b"Host:"), 200, "3.2"),
]  # fmt: skip
