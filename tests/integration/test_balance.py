"""Connections opened at once are spread over the workers, not taken by the first to wake.

The API server keeps its connections to the webhook open, so the worker that
accepted them does the work. Without the shared counts (webhook.serving.seats) one
worker often took every connection of a burst (17-0 or 16-1 in four of six
benchmark runs).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import Counter
from pathlib import Path

from harness.servers import example_config, running_server, workers_of

CONNECTIONS = 8


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def served_connections(port: int, clients: set[int]) -> set[str]:
    """Inodes of the server's ends of the connections from the `clients` ports (/proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        if local_port == port and remote_port in clients:
            inodes.add(fields[9])
    return inodes


def wait_for_workers(master: int, count: int, timeout: float = 30) -> None:
    """Both workers forked and past loading the app (the first answers health checks sooner)."""
    deadline = time.monotonic() + timeout
    while len(workers_of(master)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} workers after {timeout}s"
        time.sleep(0.1)
    time.sleep(2)  # the later worker loads the app before it accepts


def test_a_burst_of_connections_is_spread_over_both_workers(tmp_path: Path) -> None:
    config = example_config(tmp_path)
    assert config["server"]["workers"] == 2
    port = config["server"]["port"]
    with running_server(tmp_path, config) as server:
        server.session.close()  # its connection would count for one worker
        wait_for_workers(server.process.pid, 2)
        context = ssl.create_default_context(cafile=str(server.ca_file))
        opened: list[ssl.SSLSocket] = []
        lock = threading.Lock()
        start = threading.Barrier(CONNECTIONS)

        def connect() -> None:
            start.wait()
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            tls = context.wrap_socket(raw, server_hostname="localhost")
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert tls.recv(4096).startswith(b"HTTP/1.1 200")  # answered, kept open
            with lock:
                opened.append(tls)

        threads = [threading.Thread(target=connect) for _ in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        try:
            assert len(opened) == CONNECTIONS
            served = served_connections(port, {tls.getsockname()[1] for tls in opened})
            held = Counter(
                {pid: len(socket_inodes(pid) & served) for pid in workers_of(server.process.pid)}
            )
            assert len(held) == 2, held
            assert sum(held.values()) == CONNECTIONS, held
            assert max(held.values()) - min(held.values()) <= 2, f"connections per worker: {held}"
        finally:
            for tls in opened:
                tls.close()
