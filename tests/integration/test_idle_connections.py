"""Idle keep-alive connections cannot use up the connection bound, on either port.

1,024 connections that each sent one GET and then idled made a review on a
fresh connection wait 52 s: its handshake never started, since the worker
was at its bound. The admin port shared that bound, so the status page could
starve admission. Now each port has its own bound, and at the bound the
connection idle the longest is closed to make room for the new one.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
import requests

from harness.clients import fresh_review, healthz_seconds, idle_after_one_get
from harness.servers import Server, resident_bytes

IDLE = 1_100
LIMIT = 2.0  # seconds for a review on a fresh connection
GROWTH_LIMIT = 128 * 1024 * 1024  # worker RSS for 1,100 idle connections (284 MiB before)


@pytest.mark.parametrize("admin", [False, True], ids=["admission port", "admin port"])
def test_a_review_on_a_fresh_connection_behind_1100_idle_ones(
    one_worker: Server, admin: bool
) -> None:
    server = one_worker
    (worker,) = server.workers()
    before = resident_bytes(worker)
    with ExitStack() as stack, ThreadPoolExecutor(32) as pool:
        opened = [c for c in pool.map(lambda _: idle_after_one_get(server, admin), range(IDLE))]
        for tls in opened:
            if tls is not None:
                stack.callback(tls.close)
        served = sum(tls is not None for tls in opened)
        growth = resident_bytes(worker) - before
        probe = healthz_seconds(server)
        reply, took = fresh_review(server)
        assert reply.status_code == 200
        assert "patch" in reply.json()["response"]
        status_took = None
        if admin:
            started = time.monotonic()
            with requests.Session() as fresh:
                fresh.trust_env = False
                page = fresh.get(
                    f"{server.admin_url}/status", verify=str(server.ca_file), timeout=30
                )
            status_took = time.monotonic() - started
            assert page.status_code == 200
    port = "admin" if admin else "admission"
    print(
        f"{served} of {IDLE} idle connections on the {port} port served their GET (worker RSS "
        f"+{growth >> 20} MiB); a review on a fresh connection then took {took:.2f}s"
        + (f", the status page {status_took:.2f}s" if status_took is not None else "")
    )
    assert took < LIMIT, f"a review took {took:.1f}s behind {IDLE} idle connections"
    assert probe < 1.0, f"/healthz took {probe:.2f}s behind {IDLE} idle connections"
    assert growth < GROWTH_LIMIT, f"{IDLE} idle connections grew the worker by {growth >> 20} MiB"
    if status_took is not None:
        assert status_took < LIMIT, f"the status page took {status_took:.1f}s"
