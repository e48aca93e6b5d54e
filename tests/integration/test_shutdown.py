"""Graceful shutdown: readiness fails first, requests in flight finish, then the process exits."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from harness.builders import argo_pod, review_of
from harness.servers import Server, example_config, running_server
from harness.standins.bigquery import bigquery_source, running_bigquery


def slow_review(server: Server, slug: str) -> tuple[int, dict[str, Any], str]:
    review = review_of(argo_pod(slug))
    session = requests.Session()
    session.trust_env = False
    session.verify = str(server.ca_file)
    reply = session.post(f"{server.url}/mutate", json=review, timeout=30)
    return reply.status_code, reply.json(), review["request"]["uid"]


def test_sigterm_drains_then_finishes_in_flight_requests(tmp_path: Path) -> None:
    with running_bigquery() as bigquery:
        assert bigquery.stand_in is not None
        # Every fresh slug costs a slow tables.get (3 s). Timeline: requests at 0 s,
        # SIGTERM at 0.5 s, one more request at about 2 s (well inside the drain),
        # drain ends at 4.5 s and gunicorn's graceful stop begins while that last
        # request is still in flight (it ends at about 5 s).
        bigquery.delay = 3.0
        config = example_config(tmp_path)
        config["server"]["drainSeconds"] = 4
        config["server"]["threads"] = 16  # probes never queue behind the slow reviews
        config["enrollments"] = bigquery_source(bigquery.stand_in.url)
        with running_server(tmp_path, config) as server, ThreadPoolExecutor(8) as pool:
            in_flight = [pool.submit(slow_review, server, f"drain-{i}") for i in range(6)]
            time.sleep(0.5)
            server.process.send_signal(signal.SIGTERM)
            readiness: list[int] = []
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                readiness.append(server.session.get(f"{server.url}/readyz", timeout=5).status_code)
                time.sleep(0.1)
            during_drain = pool.submit(slow_review, server, "started-while-draining")
            results = [f.result(timeout=30) for f in [*in_flight, during_drain]]
            exit_code = server.process.wait(timeout=30)
            log = server.log()
    assert 503 in readiness, f"readiness never failed during the drain: {readiness}"
    for status, body, uid in results:
        assert status == 200
        assert body["response"]["uid"] == uid
        assert body["response"]["allowed"] is True
        assert "patch" in body["response"]
    assert exit_code == 0
    assert "draining for 4.0s" in log
