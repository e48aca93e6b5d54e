"""A 30-second soak at a fixed rate while the backend fails every few seconds.

Asserts, over the whole run: no 5xx, no malformed answer, every admission
either pinned or answered exactly as `onError` says (deny: 503 naming the
source; allow: admitted with `jetstream/pin-error`).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from harness.builders import argo_pod, review_of, utc
from harness.servers import Server, example_config, running_server
from harness.standins.base import Reply, json_reply
from harness.standins.bigquery import bigquery_source, running_bigquery
from tests.support.kube import apply_response

SOAK_SECONDS = 30.0
RATE_PER_SECOND = 40
FAULT_EVERY = 3.0
FAULTS = [
    json_reply({"error": {"code": 500, "message": "backendError"}}, 500),
    Reply(200, b"{}", {"Content-Type": "application/json"}, delay=1.5),
    Reply(200, b"<html>", {"Content-Type": "text/html"}),
    json_reply({"error": {"code": 403}}, 403),
]
SOURCE = "bigquery"


def _config(workdir: Path, url: str, on_error: str) -> dict[str, Any]:
    config = example_config(workdir)
    config["onError"] = on_error
    config["enrollments"] = bigquery_source(url, timeout=0.5)
    config["cache"] = {"notEnrolledTtlSeconds": 1}
    return config


def classify(server_kind: str, review: dict[str, Any], reply: requests.Response) -> str:
    assert reply.status_code == 200, f"HTTP {reply.status_code}: {reply.text[:200]}"
    body = reply.json()
    response = body["response"]
    assert response["uid"] == review["request"]["uid"]
    if response["allowed"] is False:
        assert server_kind == "deny"
        assert response["status"]["code"] == 503
        assert SOURCE in response["status"]["message"]
        return "denied-503"
    pod = apply_response(review["request"]["object"], body)
    notes = pod["metadata"]["annotations"]
    if "jetstream/pin-error" in notes:
        assert server_kind == "allow"
        assert SOURCE in notes["jetstream/pin-error"]
        assert pod["spec"] == review["request"]["object"]["spec"]
        return "allowed-unpinned"
    assert pod["spec"]["containers"][1]["image"].split("@")[1].startswith("sha256:")
    return "pinned"


def test_soak_with_faults(tmp_path: Path) -> None:
    with running_bigquery() as bigquery:
        assert bigquery.stand_in is not None
        bigquery.add("enrollments_steady_experiment", utc("2024-05-30T02:00:00Z"))
        url = bigquery.stand_in.url
        with (
            running_server(tmp_path / "deny", _config(tmp_path / "deny", url, "deny")) as deny,
            running_server(tmp_path / "allow", _config(tmp_path / "allow", url, "allow")) as allow,
        ):
            outcomes = _soak(bigquery.stand_in, {"deny": deny, "allow": allow})
    print(dict(outcomes))
    assert outcomes["pinned"] > 0
    assert outcomes["denied-503"] > 0
    assert outcomes["allowed-unpinned"] > 0
    assert sum(outcomes.values()) >= SOAK_SECONDS * RATE_PER_SECOND * 0.8


def _soak(stand_in: Any, servers: dict[str, Server]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    slugs = itertools.count()

    def fault_injector() -> None:
        for fault in itertools.cycle([*FAULTS, None]):
            stand_in.fault = fault
            if stop.wait(FAULT_EVERY):
                break
        stand_in.fault = None

    def client(kind: str, server: Server, period: float) -> None:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(server.ca_file)
        next_at = time.monotonic()
        while not stop.is_set():
            n = next(slugs)
            slug = "steady-experiment" if n % 3 == 0 else f"soak-{n}"
            review = review_of(argo_pod(slug))
            try:
                reply = session.post(f"{server.url}/mutate", json=review, timeout=10)
                outcome = classify(kind, review, reply)
            except Exception as err:  # collected and asserted below
                with lock:
                    errors.append(f"{kind}: {err!r}")
                continue
            with lock:
                outcomes[outcome] += 1
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))

    threads = [threading.Thread(target=fault_injector)]
    per_client = 4 / RATE_PER_SECOND  # 4 clients: 2 per server
    for kind, server in servers.items():
        threads += [
            threading.Thread(target=client, args=(kind, server, per_client)) for _ in range(2)
        ]
    for thread in threads:
        thread.start()
    time.sleep(SOAK_SECONDS)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors[:5]
    return outcomes
