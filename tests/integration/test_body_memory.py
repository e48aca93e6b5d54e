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
from contextlib import ExitStack

from harness.clients import fresh_review, healthz_seconds, hold_a_body
from harness.servers import Server, resident_bytes

HELD = 48
BODY = 6 * 1024 * 1024
GROWTH_LIMIT = 128 * 1024 * 1024


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
        reply, answered = fresh_review(server)  # a review meanwhile, on a fresh connection
        probe = healthz_seconds(server)
        peak = max(peak, resident_bytes(worker))
        stop.set()
        for sender in senders:
            sender.join(5)
    growth = peak - before
    print(
        f"{HELD} connections holding {BODY >> 20} MiB bodies: worker RSS {before >> 20} -> "
        f"{peak >> 20} MiB (+{growth >> 20} MiB); a review meanwhile: {reply.status_code} "
        f"in {answered:.2f}s, /healthz in {probe:.2f}s"
    )
    assert growth < GROWTH_LIMIT, f"the worker grew by {growth >> 20} MiB"
    assert reply.status_code == 200
    assert answered < 2.0
    assert probe < 1.0, f"/healthz took {probe:.2f}s"
