"""Request bodies in flight are bounded per worker, not per connection.

Each connection may send a body of up to `maxRequestBytes` (6 MiB), and the
worker used to buffer every body whole while it arrived: 60 connections each
holding a 6 MiB body one byte short raised a worker from 67 to 484 MB (the
chart's limit is 512 Mi). Now a worker holds at most
`maxBodyBytesInFlight` bytes of bodies; the other connections wait unread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from tests.builders import argo_pod, review_of
from tests.clients import hold_a_body
from tests.servers import Server, example_config, resident_bytes, running_server

HELD = 48
BODY = 6 * 1024 * 1024
GROWTH_LIMIT = 128 * 1024 * 1024


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = Path(tmp_path_factory.mktemp("body-memory"))
    config = example_config(workdir)
    config["server"].update(workers=1, threads=4)
    with running_server(workdir, config) as server:
        yield server


def test_48_held_6_mib_bodies_stay_within_the_bound(one_worker: Server) -> None:
    server = one_worker
    (worker,) = server.workers()
    before = resident_bytes(worker)
    peak = before
    stop = threading.Event()
    with ExitStack() as stack:
        senders = [hold_a_body(server, stack, stop, BODY) for _ in range(HELD)]
        deadline = time.monotonic() + 6  # under the body timeout (10 s) and the deadline (8 s)
        while time.monotonic() < deadline:
            peak = max(peak, resident_bytes(worker))
            time.sleep(0.05)
        started = time.monotonic()
        with requests.Session() as fresh:  # a review meanwhile, on a fresh connection
            fresh.trust_env = False
            reply = fresh.post(
                f"{server.url}/mutate",
                json=review_of(argo_pod("my-experiment")),
                verify=str(server.ca_file),
                timeout=10,
            )
        answered = time.monotonic() - started
        peak = max(peak, resident_bytes(worker))
        stop.set()
        for sender in senders:
            sender.join(5)
    growth = peak - before
    print(
        f"{HELD} connections holding {BODY >> 20} MiB bodies: worker RSS {before >> 20} -> "
        f"{peak >> 20} MiB (+{growth >> 20} MiB); a review meanwhile: {reply.status_code} "
        f"in {answered:.2f}s"
    )
    assert growth < GROWTH_LIMIT, f"the worker grew by {growth >> 20} MiB"
    assert reply.status_code == 200
    assert answered < 2.0
