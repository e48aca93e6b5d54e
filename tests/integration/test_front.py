"""The front end's HTTP on the real server: what the API server, curl and the kubelet send."""

from __future__ import annotations

import json
import socket
import ssl

import pytest

from harness.builders import argo_pod, review_of
from harness.servers import Server
from tests.support.rfc9112 import SHAPES, Shape


def exchange(server: Server, *parts: bytes, read_between: bool = False) -> bytes:
    """Send `parts` on one TLS connection (reading after each if asked); all that came back."""
    host, port = server.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(server.ca_file))
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        received = b""
        for part in parts:
            tls.sendall(part)
            if read_between:
                received += tls.recv(65536)
        while chunk := tls.recv(65536):
            received += chunk
        return received


def test_chunked_bodies_are_refused_with_411(server: Server) -> None:
    reply = exchange(
        server,
        b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 411")
    assert b"Content-Length" in reply


def test_expect_100_continue_like_curl(server: Server) -> None:
    body = json.dumps(review_of(argo_pod("my-experiment"))).encode()
    head = (
        f"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()
    reply = exchange(server, head, body, read_between=True)
    assert reply.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")
    assert b'"patch"' in reply


def test_keep_alive_serves_several_requests_and_http_1_0_closes(server: Server) -> None:
    probe = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = exchange(server, probe + probe + last)
    assert reply.count(b"HTTP/1.1 200") == 3
    old = exchange(server, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert old.startswith(b"HTTP/1.1 200")
    assert b"Connection: close" in old


def test_head_has_no_body(server: Server) -> None:
    reply = exchange(server, b"HEAD /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 404")  # the status page is on the admin port
    assert reply.endswith(b"\r\n\r\n")


def answer_and_after(server: Server, wire: bytes, within: float) -> tuple[bytes, bytes | None]:
    """Send one request: its answer, then what followed it until the server closed (None: the
    connection was still open after `within` seconds)."""
    host, port = server.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(server.ca_file))
    received = b""
    with (
        socket.create_connection((host, int(port)), timeout=within) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(wire)
        while b"\r\n\r\n" not in received and (chunk := tls.recv(65536)):
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        while len(rest) < length and (chunk := tls.recv(65536)):
            rest += chunk
        answer, after = head + b"\r\n\r\n" + rest[:length], rest[length:]
        try:
            while chunk := tls.recv(65536):
                after += chunk
        except TimeoutError:
            return answer, None
        except OSError:  # reset: closed too
            pass
    return answer, after


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_rfc9112_shapes_on_the_wire(server: Server, shape: Shape) -> None:
    """Each forbidden shape: its status, one answer only, and the connection closed at once."""
    answer, after = answer_and_after(server, shape.wire, within=2.0 if shape.refused else 0.2)
    assert answer.startswith(b"HTTP/1.1 %d " % shape.status), (shape.name, answer[:300])
    if shape.refused:
        assert b"Connection: close" in answer
        assert after is not None, "the connection stayed open after a refusal"
        assert after == b"", f"a second answer: {after!r}"
