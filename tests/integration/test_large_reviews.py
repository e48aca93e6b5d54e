"""A review with a huge pod cannot stall the worker's event loop (the probes, other clients).

Mutating webhooks run before schema validation, so anyone who may create a
pod in scope can send one with 20,000 target containers (1.4 MB). Reading it
on the loop held one worker's `/healthz` for 13 s; now such a body is decided
in an admission thread, and reading a pod is linear and bounded.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from harness.builders import argo_pod, review_of
from harness.clients import healthz_seconds
from harness.servers import Server

TARGETS = 20_000
PROBE_LIMIT = 1.0  # seconds: a kubelet probe's default timeout


def crowded_pod(targets: int) -> dict[str, Any]:
    pod = argo_pod("my-experiment")
    image = pod["spec"]["containers"][1]["image"]
    pod["spec"]["containers"] += [{"name": f"extra-{i}", "image": image} for i in range(targets)]
    return pod


def probe_while(server: Server, busy: threading.Event) -> list[float]:
    """Seconds each /healthz took, on a new connection each, for as long as `busy` is set."""
    took = []
    while busy.is_set():
        took.append(healthz_seconds(server))
    return took


def test_a_pod_with_20000_target_containers_does_not_stall_healthz(one_worker: Server) -> None:
    server = one_worker
    assert server.post_review(review_of(argo_pod("my-experiment"))).status_code == 200  # warm
    body = json.dumps(review_of(crowded_pod(TARGETS))).encode()
    outcome: dict[str, Any] = {}
    busy = threading.Event()
    busy.set()

    def post() -> None:
        started = time.monotonic()
        try:
            reply = server.session.post(
                f"{server.url}/mutate",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=60,
            )
            outcome["status"] = reply.status_code
            outcome["answer"] = reply.json()
        finally:
            outcome["seconds"] = time.monotonic() - started
            busy.clear()

    poster = threading.Thread(target=post)
    poster.start()
    took = probe_while(server, busy)
    poster.join(60)
    print(
        f"{len(body) / 1e6:.1f} MB review with {TARGETS} targets answered {outcome.get('status')}"
        f" in {outcome['seconds']:.2f}s; {len(took)} probes meanwhile, slowest {max(took):.3f}s"
    )
    assert took, "no probe ran while the review was decided"
    assert max(took) < PROBE_LIMIT, f"/healthz took {max(took):.2f}s while the review was decided"
    assert outcome["seconds"] < 10, f"the review took {outcome['seconds']:.1f}s"
    assert outcome.get("status") == 200, outcome
    refused = outcome["answer"]["response"]
    assert refused["allowed"] is False
    assert refused["status"]["code"] == 400
    assert "podLimits.containers" in refused["status"]["message"]
