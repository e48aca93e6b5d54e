"""The accept loop survives its own errors: a worker that stops accepting still looks alive."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from pathlib import Path

import pytest

from webhook import certs
from webhook.front import Front
from webhook.seats import Seat, Seats


class SeatThatFailsOnce(Seat):
    def __init__(self) -> None:
        super().__init__(Seats(2), 0)
        self.failed = False

    def publish(self, connections: int) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("the shared table is broken")
        super().publish(connections)


def probe(port: int, ca_file: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return tls.recv(4096)


def test_an_error_after_accepting_does_not_stop_the_accepting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    certs.write(certs.issue(["localhost"], ["127.0.0.1"]), tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / certs.CERT_FILE, tmp_path / certs.KEY_FILE)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seat = SeatThatFailsOnce()
    front = Front(lambda env, start: [], [listener], lambda: context, port, 1, seat=seat)
    stop = threading.Event()
    serving = threading.Thread(target=lambda: asyncio.run(front.serve(lambda: not stop.is_set())))
    with caplog.at_level(logging.ERROR, logger="webhook.front"):
        serving.start()
        try:
            first = probe(port, tmp_path / certs.CA_FILE)  # its accept raised after the fact
            second = probe(port, tmp_path / certs.CA_FILE)
        finally:
            stop.set()
            serving.join(30)
            listener.close()
    assert seat.failed
    assert first.startswith(b"HTTP/1.1 200")
    assert second.startswith(b"HTTP/1.1 200")
    assert any("accepting again" in r.getMessage() for r in caplog.records)
