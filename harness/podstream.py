"""Pods created continuously while the cluster is disturbed, each create checked.

`PodStream` creates Argo-shaped Jetstream pods in one namespace at a steady
rate from a thread (bounded in count and time; it stops by itself), and keeps
what the client saw for each: the status code, the API server's message, and
whether the stored pod (the create's answer) has its `main` container pinned
to a digest. The pods name a node selector no node has, so they are stored
and stay Pending: the load is on admission, not on the node's two cores.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from harness.builders import argo_pod
from harness.controlplane.client import create_pod
from harness.controlplane.plane import ControlPlane

UNSCHEDULABLE = {"jetstream-pin.test/never": "scheduled"}


@dataclass(frozen=True)
class Outcome:
    status: int
    pinned: bool
    message: str


def stream_pod(namespace: str, slug: str = "my-experiment") -> dict[str, Any]:
    pod = argo_pod(slug, workflow=None)
    pod["metadata"]["namespace"] = namespace
    pod["metadata"]["generateName"] = "stream-"
    pod["metadata"].pop("name")
    pod["metadata"]["labels"]["workflows.argoproj.io/workflow"] = "stream"
    pod["spec"]["nodeSelector"] = UNSCHEDULABLE
    return pod


def is_pinned(body: dict[str, Any]) -> bool:
    for item in body.get("spec", {}).get("containers", []):
        if item["name"] == "main":
            return "@sha256:" in str(item["image"])
    return False


@dataclass
class PodStream:
    plane: ControlPlane
    namespace: str
    per_second: float = 4.0
    limit: int = 2000
    seconds: float = 600.0
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-stream", daemon=True)

    def __enter__(self) -> PodStream:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        with self.plane.api() as api:
            while not self._stop.is_set() and len(self.outcomes) < self.limit:
                if time.monotonic() > deadline:
                    return
                started = time.monotonic()
                try:
                    answer = create_pod(self.plane, stream_pod(self.namespace), api=api)
                    outcome = Outcome(answer.status, is_pinned(answer.body), answer.message)
                except Exception as err:
                    outcome = Outcome(0, False, f"{type(err).__name__}: {err}")
                self.outcomes.append(outcome)
                self._stop.wait(max(0.0, 1 / self.per_second - (time.monotonic() - started)))

    # What was seen.
    @property
    def created(self) -> int:
        return sum(1 for o in self.outcomes if o.status == 201)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 201]

    @property
    def unpinned(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 201 and not o.pinned]

    def summary(self) -> str:
        return (
            f"{len(self.outcomes)} creates: {self.created} created, {len(self.failed)} failed, "
            f"{len(self.unpinned)} unpinned; first failures: {self.failed[:3]}"
        )

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Until `count` more creates were made (the stream runs across the disturbance)."""
        target = len(self.outcomes) + count
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < target:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError(f"the stream stalled: {self.summary()}")
            time.sleep(0.1)
