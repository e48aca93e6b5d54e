"""Free loopback ports, found one way for every server the tests, benchmarks and
`scripts/cluster` start.

The kernel hands out an unused port when a socket binds port 0; the probe is
closed at once, so the port is free for the program that binds it next (and,
while nothing has bound it, it is also a port where a connection is refused:
the "backend down" address of the fault tests).
"""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """One port on `host` that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports (one program may need several at once)."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port(host))
    return sorted(ports)
