"""A backend that drips its answers cannot make the webhook miss the API server's deadline.

BigQuery (the real client, against the stand-in) answers every call 10 bytes
at a time, 0.25 s apart: every gap is far under its 5 s read timeout, the
whole answer takes 10 s. 100 reviews of distinct experiments are posted at
once to one worker with 16 admission threads and a 2 s deadline: each is
answered (503, the failure policy) by the deadline, whether its lookup ran
out of time or it never got a thread; meanwhile the probes, answered by the
front end's loop, never take a second.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from harness.builders import argo_pod, review_of
from harness.servers import Server, example_config, running_server
from harness.standins.base import Reply
from harness.standins.bigquery import bigquery_source, running_bigquery

DEADLINE = 2.0
# Client-side time also holds a fresh TLS connection per review, 100 at once on a
# loaded 2-core machine shared with the server.
CLIENT_MARGIN = 1.0


def post(server: Server, slug: str) -> tuple[float, int, dict[str, object]]:
    with requests.Session() as session:
        session.trust_env = False
        started = time.monotonic()
        reply = session.post(
            f"{server.url}/mutate",
            json=review_of(argo_pod(slug)),
            verify=str(server.ca_file),
            timeout=30,
        )
        return time.monotonic() - started, reply.status_code, reply.json()["response"]


def probe_while(server: Server, stop: threading.Event, latencies: dict[str, list[float]]) -> None:
    for _ in range(600):  # bounded: 0.1 s apart, the run takes a few seconds
        if stop.is_set():
            return
        for path in ("/healthz", "/readyz"):
            with requests.Session() as session:  # a new connection each, like the kubelet
                session.trust_env = False
                started = time.monotonic()
                session.get(f"{server.url}{path}", verify=str(server.ca_file), timeout=10)
                latencies[path].append(time.monotonic() - started)
        time.sleep(0.1)


def test_100_reviews_against_a_dripping_backend(tmp_path: Path) -> None:
    with running_bigquery() as bigquery:
        assert bigquery.stand_in is not None
        config = example_config(tmp_path)
        config["server"].update(workers=1, threads=16, admissionDeadlineSeconds=DEADLINE)
        config["enrollments"] = bigquery_source(bigquery.stand_in.url, timeout=5.0)
        config["cache"] = {"prefetchEnrollments": False}
        with running_server(tmp_path, config) as server:
            bigquery.stand_in.fault = Reply(
                200, b" " * 398 + b"{}", {"Content-Type": "application/json"}, drip=0.25
            )
            latencies: dict[str, list[float]] = {"/healthz": [], "/readyz": []}
            stop = threading.Event()
            prober = threading.Thread(target=probe_while, args=(server, stop, latencies))
            prober.start()
            time.sleep(0.3)
            with ThreadPoolExecutor(100) as pool:
                answers = list(pool.map(lambda i: post(server, f"drip-{i}"), range(100)))
            time.sleep(0.5)
            stop.set()
            prober.join(30)
            log = server.log()
    times = sorted(elapsed for elapsed, _, _ in answers)
    causes = {"deadline": 0, "busy": 0}
    for _elapsed, status, response in answers:
        assert status == 200
        assert response["allowed"] is False
        assert response["status"]["code"] == 503  # type: ignore[index]
        message = str(response["status"]["message"])  # type: ignore[index]
        if "no answer within the admission deadline of 2s" in message:
            assert "bigquery" in message
            causes["deadline"] += 1
        else:
            assert "thread was busy" in message, message
            causes["busy"] += 1
    probes = {path: max(values) for path, values in latencies.items()}
    print(
        f"100 reviews against a dripping BigQuery, deadline {DEADLINE:g}s: answered in "
        f"{times[0]:.2f}-{times[-1]:.2f}s (median {times[50]:.2f}s); {causes}; probes "
        + ", ".join(
            f"{path} max {t * 1000:.0f} ms over {len(latencies[path])}"
            for path, t in probes.items()
        )
    )
    assert times[-1] < DEADLINE + CLIENT_MARGIN, f"slowest answer {times[-1]:.2f}s"
    assert causes["deadline"] > 0
    assert all(values for values in latencies.values()), "the probes never ran"
    assert max(probes.values()) < 1.0, f"a probe took {max(probes.values()):.2f}s"
    assert "Traceback" not in log
