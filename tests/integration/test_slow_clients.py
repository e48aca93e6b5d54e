"""Clients that connect and then stall cannot stop the webhook.

256 TCP connections that never start TLS, 16 TLS connections that say
nothing after the handshake and 32 that dribble their headers a byte at a
time are held open while a legitimate review is posted: it is answered
within 1 s. The server closes every stalled connection itself, within its
handshake and header timeouts (plus a margin for a loaded machine).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from harness.builders import argo_pod, review_of
from harness.servers import Server, example_config, running_server

HANDSHAKE = 2.0
HEADERS = 2.0
MARGIN = 3.0  # a loaded 2-core machine runs the test clients too


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = Path(tmp_path_factory.mktemp("slow-clients"))
    config = example_config(workdir)
    config["server"].update(
        workers=1, threads=16, handshakeTimeoutSeconds=HANDSHAKE, headerTimeoutSeconds=HEADERS
    )
    with running_server(workdir, config) as server:
        yield server


def address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("https://").split(":")
    return host, int(port)


def tls_client(server: Server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca_file))


def closed_by_server(sock: socket.socket | ssl.SSLSocket, opened: float, within: float) -> float:
    """Seconds from `opened` by which the server had closed `sock` (EOF or reset); inf: open."""
    sock.settimeout(max(opened + within - time.monotonic(), 0.01))
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return float("inf")
    except OSError:  # reset, or TLS torn down
        pass
    return time.monotonic() - opened


@contextmanager
def dribbling(server: Server, count: int) -> Iterator[list[ssl.SSLSocket]]:
    """TLS connections sending a request head one byte every 0.2 s (never finishing)."""
    stop = threading.Event()
    sockets = []
    for _ in range(count):
        raw = socket.create_connection(address(server), timeout=10)
        sockets.append(tls_client(server).wrap_socket(raw, server_hostname="localhost"))

    def drip(tls: ssl.SSLSocket) -> None:
        for byte in b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json":
            if stop.wait(0.2):
                return
            try:
                tls.send(bytes([byte]))
            except OSError:
                return

    threads = [threading.Thread(target=drip, args=(s,), daemon=True) for s in sockets]
    for thread in threads:
        thread.start()
    try:
        yield sockets
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


def test_stalled_clients_do_not_delay_a_review_and_are_closed(strict_server: Server) -> None:
    server = strict_server
    with ExitStack() as stack:
        opened = time.monotonic()
        idle = [
            stack.enter_context(socket.create_connection(address(server), timeout=10))
            for _ in range(256)
        ]
        silent = []
        for _ in range(16):
            raw = socket.create_connection(address(server), timeout=10)
            silent.append(
                stack.enter_context(
                    tls_client(server).wrap_socket(raw, server_hostname="localhost")
                )
            )
        talking = time.monotonic()  # the TLS ones finished their handshakes here
        dribblers = stack.enter_context(dribbling(server, 32))
        time.sleep(0.5)
        started = time.monotonic()
        reply = server.post_review(review_of(argo_pod("my-experiment")))
        answered = time.monotonic() - started
        assert reply.status_code == 200
        assert "patch" in reply.json()["response"]
        assert answered < 1.0, f"a review took {answered:.2f}s behind stalled clients"
        waits = {
            "idle TCP": [closed_by_server(s, opened, HANDSHAKE + MARGIN) for s in idle],
            "silent TLS": [closed_by_server(s, talking, HEADERS + MARGIN) for s in silent],
            "dribbling TLS": [closed_by_server(s, talking, HEADERS + MARGIN) for s in dribblers],
        }
    for kind, closed in waits.items():
        still_open = sum(1 for t in closed if t == float("inf"))
        assert still_open == 0, f"{kind}: {still_open} connections left open"
    print(
        f"review answered in {answered * 1000:.0f} ms behind 256 idle TCP, 16 silent and 32 "
        "dribbling TLS connections; all closed by the server by "
        + ", ".join(f"{max(v):.1f}s ({k})" for k, v in waits.items())
    )


def test_idle_keep_alive_connections_are_closed_after_the_idle_timeout(
    tmp_path: Path,
) -> None:
    config = example_config(tmp_path)
    config["server"].update(idleTimeoutSeconds=1.0)
    with running_server(tmp_path, config) as server:
        raw = socket.create_connection(address(server), timeout=10)
        tls = tls_client(server).wrap_socket(raw, server_hostname="localhost")
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert tls.recv(4096).startswith(b"HTTP/1.1 200")
        closed = closed_by_server(tls, time.monotonic(), 1.0 + MARGIN)
        tls.close()
    assert closed < 1.0 + MARGIN, "an idle keep-alive connection was never closed"


def test_clients_keeping_closed_connections_open_do_not_stall_others(
    strict_server: Server,
) -> None:
    """`Connection: close` answers to clients that never close their side cost nothing."""
    server = strict_server
    with ExitStack() as stack:
        for _ in range(8):
            raw = socket.create_connection(address(server), timeout=10)
            tls = stack.enter_context(
                tls_client(server).wrap_socket(raw, server_hostname="localhost")
            )
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert tls.recv(4096).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        reply = server.post_review(review_of(argo_pod("my-experiment")))
        answered = time.monotonic() - started
    assert reply.status_code == 200
    assert answered < 1.0, f"a review took {answered:.2f}s"
