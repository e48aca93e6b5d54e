"""The front end's HTTP/1.1, without a socket (RFC 9112's table: test_rfc9112.py)."""

from __future__ import annotations

import pytest

from webhook.serving.httpwire import BadRequest, environ, parse_head, response


def head(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("latin-1") + b"\r\n"


def test_a_review_head() -> None:
    parsed = parse_head(
        head("POST /mutate?timeout=10s HTTP/1.1\nHost: x\nContent-Type: application/json\n"
             "Content-Length: 12\nAccept: a\nAccept: b\n")
    )  # fmt: skip
    assert (parsed.method, parsed.path, parsed.content_length) == ("POST", "/mutate", 12)
    assert parsed.headers["accept"] == "a, b"
    assert parsed.keep_alive
    env = environ(parsed, b"{}", 8443, ("127.0.0.1", 5), {"extra": 1})
    assert env["PATH_INFO"] == "/mutate"
    assert env["QUERY_STRING"] == "timeout=10s"
    assert env["SERVER_PORT"] == "8443"
    assert env["CONTENT_TYPE"] == "application/json"
    assert env["CONTENT_LENGTH"] == "12"
    assert env["HTTP_HOST"] == "x"
    assert env["wsgi.input"].read() == b"{}"
    assert env["extra"] == 1


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("GARBAGE\n", 400),
        ("GET x HTTP/1.1\nHost: x\n", 400),
        ("OPTIONS * HTTP\nHost: x\n", 400),
        ("POST /x HTTP/1.1\nHost: x\nContent-Length: -1\n", 400),
        ("POST /x HTTP/1.1\nHost: x\nContent-Length: 1234567890123\n", 400),
    ],
)
def test_refused_heads(text: str, status: int) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_head(head(text))
    assert caught.value.status == status


def test_connection_persistence() -> None:
    assert not parse_head(head("GET / HTTP/1.1\nHost: x\nConnection: close\n")).keep_alive
    assert not parse_head(head("GET / HTTP/1.0\n")).keep_alive
    assert parse_head(head("GET / HTTP/1.0\nConnection: keep-alive\n")).keep_alive
    assert parse_head(head("POST / HTTP/1.1\nHost: x\nExpect: 100-continue\n")).expects_continue


def test_absolute_targets_keep_path_and_query() -> None:
    absolute = head("GET https://h:1/readyz?a=1 HTTP/1.1\nHost: h:1\n")
    assert parse_head(absolute).target == "/readyz?a=1"
    assert parse_head(head("OPTIONS * HTTP/1.1\nHost: h\n")).target == "*"


def test_response_sets_length_and_connection_itself() -> None:
    wire = response("200 OK", [("Content-Length", "999"), ("X-A", "1")], b"body", False)
    assert wire == (
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody"
    )
