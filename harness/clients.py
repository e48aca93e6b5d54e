"""Clients that hold a server's resources: idle connections, unfinished heads, held bodies.

Shared by the tests that bound what they cost (tests/integration/) and the
benchmark that measures it (bench/memory.py).
"""

from __future__ import annotations

import ssl
import threading
import time
from contextlib import ExitStack

import requests

from harness.builders import argo_pod, review_of
from harness.servers import Server

REVIEW_HEAD = "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def idle_after_one_get(server: Server, admin: bool = False) -> ssl.SSLSocket | None:
    """A connection that sent one GET and read its answer, then idles (None: not served)."""
    try:
        tls = server.tls_connection(admin=admin, timeout=5)
    except OSError:
        return None
    try:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        if tls.recv(4096).startswith(b"HTTP/1.1 "):
            return tls
    except OSError:
        pass
    tls.close()
    return None


def unfinished_head(server: Server, size: int, admin: bool = False) -> ssl.SSLSocket:
    """A connection that sent a request head of `size` bytes without its end."""
    tls = server.tls_connection(admin=admin, timeout=30)
    tls.sendall(f"{REVIEW_HEAD}X-Pad: ".encode() + b"a" * size)
    return tls


def hold_a_body(
    server: Server, stack: ExitStack, stop: threading.Event, size: int
) -> threading.Thread:
    """A connection sending a review body of `size` bytes one byte short, then nothing (in a
    thread, which ends when the server refuses or closes, or at `stop`)."""
    tls: ssl.SSLSocket = stack.enter_context(server.tls_connection(timeout=30))
    head = f"{REVIEW_HEAD}Content-Length: {size}\r\n\r\n".encode()

    def send() -> None:
        chunk = b" " * 65536
        try:
            tls.sendall(head)
            left = size - 1
            while left > 0 and not stop.is_set():
                tls.sendall(chunk[: min(left, len(chunk))])
                left -= min(left, len(chunk))
        except OSError:
            return  # refused or closed by the server: what a bound may do

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def fresh_review(server: Server, slug: str = "my-experiment") -> tuple[requests.Response, float]:
    """A review on a new connection (handshake included): the answer, and the seconds it took."""
    started = time.monotonic()
    with requests.Session() as fresh:
        fresh.trust_env = False
        reply = fresh.post(
            f"{server.url}/mutate",
            json=review_of(argo_pod(slug)),
            verify=str(server.ca_file),
            timeout=30,
        )
    return reply, time.monotonic() - started


def healthz_seconds(server: Server, timeout: float = 30) -> float:
    """Seconds for `/healthz` on a new connection to answer 200 (inf: it failed or took over
    `timeout` seconds)."""
    started = time.monotonic()
    try:
        with requests.Session() as fresh:
            fresh.trust_env = False
            reply = fresh.get(f"{server.url}/healthz", verify=str(server.ca_file), timeout=timeout)
    except requests.RequestException:
        return float("inf")
    return time.monotonic() - started if reply.status_code == 200 else float("inf")
