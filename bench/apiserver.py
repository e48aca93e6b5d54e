"""Pod creates through the real kube-apiserver: what the webhook adds to each one.

`scripts/bench apiserver` starts a local control plane (scripts/get-kube builds
it) and creates the same pods three ways in one run, each in its own namespace:
(a) no webhook registered, (b) the no-op webhook (bench/noop.py: the same
server stack answering `allowed: true`) registered as the chart renders it,
(c) jetstream-pin, warm, on the embedded default. It prints p50/p99/max of the
client's create latency, the creates per second, and the ratios (c)/(b) and
(c)/(a) from the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from harness.builders import argo_pod
from harness.controlplane import registration, release
from harness.controlplane.client import create_pod
from harness.controlplane.plane import ControlPlane, running_control_plane

SLUGS = [
    "firefox-desktop-private-browsing-redesign-rollout",
    "android-onboarding-notification-permission-v2",
    "my-experiment",
    "long-running-study",
]


@dataclass
class Run:
    name: str
    latencies: list[float]
    seconds: float
    failures: int

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


def create_many(plane: ControlPlane, namespace: str, count: int, threads: int, prefix: str) -> Run:
    clients = [plane.api() for _ in range(threads)]

    def one(number: int) -> tuple[float, bool]:
        pod = argo_pod(SLUGS[number % len(SLUGS)])
        pod["metadata"].update(name=f"{prefix}-{number}", namespace=namespace)
        started = time.perf_counter()
        answer = create_pod(plane, pod, api=clients[number % threads])
        return time.perf_counter() - started, answer.status == 201

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, range(count)))
    seconds = time.perf_counter() - started
    for api in clients:
        api.close()  # type: ignore[no-untyped-call]
    return Run(prefix, [r[0] for r in results], seconds, sum(1 for r in results if not r[1]))


def measure(plane: ControlPlane, namespace: str, count: int, threads: int, name: str) -> Run:
    create_many(plane, namespace, 20, threads, f"warm-{name}")  # connections, caches
    run = create_many(plane, namespace, count, threads, name)
    run.name = name
    return run


def with_webhook(
    plane: ControlPlane, workdir: Path, name: str, module: tuple[str, ...], stack: ExitStack
) -> str:
    namespace = plane.namespace(f"bench-{name}")
    values = release.chart_values([namespace])
    release.install_identity(plane, name, values)
    folder = workdir / name
    folder.mkdir()
    config = release.webhook_config(plane, folder, name)
    webhook = release.start_webhook(folder, name, config, module)
    stack.callback(webhook.running.stop)
    registration.register(
        plane,
        registration.configuration(name, webhook.mutate_url, webhook.ca_pem, plane.version, values),
        namespace,
    )
    return namespace


def report(runs: list[Run]) -> None:
    print("| webhook | creates | failed | creates/s | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for run in runs:
        print(
            f"| {run.name} | {len(run.latencies)} | {run.failures} | {run.rate:.0f} | "
            f"{run.percentile(0.5):.1f} | {run.percentile(0.99):.1f} | "
            f"{max(run.latencies) * 1000:.1f} |"
        )
    none, noop, pinned = runs

    def ratio(a: Run, b: Run, fraction: float) -> str:
        return f"{a.percentile(fraction) / b.percentile(fraction):.2f}"

    print()
    print(f"jetstream-pin / no-op webhook: p50 {ratio(pinned, noop, 0.5)}, "
          f"p99 {ratio(pinned, noop, 0.99)}, creates/s {pinned.rate / noop.rate:.2f}")  # fmt: skip
    print(f"jetstream-pin / no webhook:    p50 {ratio(pinned, none, 0.5)}, "
          f"p99 {ratio(pinned, none, 0.99)}, creates/s {pinned.rate / none.rate:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8, help="concurrent clients")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-apiserver-") as folder, ExitStack() as stack:
        workdir = Path(folder)
        plane = stack.enter_context(running_control_plane(workdir / "control-plane"))
        release.bootstrap(plane)
        print(f"Kubernetes {plane.version}, {arguments.pods} pod creates, "
              f"{arguments.threads} concurrent clients")  # fmt: skip
        bare = plane.namespace("bench-none")
        noop = with_webhook(plane, workdir, "noop", ("bench.noop",), stack)
        pinned = with_webhook(plane, workdir, "pin", release.SERVE, stack)
        runs = [
            measure(plane, bare, arguments.pods, arguments.threads, "none"),
            measure(plane, noop, arguments.pods, arguments.threads, "no-op"),
            measure(plane, pinned, arguments.pods, arguments.threads, "jetstream-pin"),
        ]
        _check_pinned(plane, pinned)
        report(runs)


def _check_pinned(plane: ControlPlane, namespace: str) -> None:
    with plane.api() as api:
        pods: Any = k8s.CoreV1Api(api).list_namespaced_pod(namespace).items
    unpinned = [p.metadata.name for p in pods if "@sha256:" not in p.spec.containers[1].image]
    if unpinned:
        raise SystemExit(f"{len(unpinned)} pods were not pinned, e.g. {unpinned[:3]}")


if __name__ == "__main__":
    main()
