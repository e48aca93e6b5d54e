"""Admission latency as the API server measures it, webhook pod against a no-op pod.

`scripts/bench node` uses the one-node cluster of `scripts/cluster up --node`
(or starts one for the run) and deploys, beside the chart's webhook, a no-op
webhook the same way: the same image and pod spec as the chart's Deployment
(security context, resources, probes, two replicas), its own Service and
certificate, and a copy of the chart's webhook configuration for a namespace
of its own. `bench/noop.py` (the same server stack answering `allowed: true`)
is mounted from a ConfigMap and run instead of `jetstream-pin serve`.

The same pods (Argo-shaped, unschedulable, so nothing runs) are created in
both namespaces, alternating, in one run; then the API server's own histogram
`apiserver_admission_webhook_admission_duration_seconds` gives p50/p99 for
each webhook (interpolated within its buckets, as Prometheus'
histogram_quantile does), beside the client's create latency.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import re
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from harness.builders import ROOT
from harness.controlplane.client import create_pod
from harness.controlplane.nodecluster import STREAM_NAMESPACE, NodeCluster, get
from harness.controlplane.plane import STATE_FILE
from harness.controlplane.registration import RELEASE_NAMESPACE
from harness.podstream import is_pinned, stream_pod
from webhook import certs

NOOP = "jetstream-pin-noop"
NOOP_PODS = "noop-pods"
NOOP_HOOK = "noop.jetstream-pin.mozilla.org"
PINNED_HOOK = "pods.jetstream-pin.mozilla.org"
METRIC = "apiserver_admission_webhook_admission_duration_seconds"


def deploy_noop(cluster: NodeCluster) -> None:
    """The no-op beside the chart's webhook, deployed the same way."""
    plane = cluster.plane
    plane.namespace(NOOP_PODS)
    names = [NOOP, f"{NOOP}.{RELEASE_NAMESPACE}", f"{NOOP}.{RELEASE_NAMESPACE}.svc",
             f"{NOOP}.{RELEASE_NAMESPACE}.svc.cluster.local"]  # fmt: skip
    bundle = certs.issue(names)
    deployment = get(cluster, "deployment", "jetstream-pin", namespace=RELEASE_NAMESPACE)
    labels = {"app.kubernetes.io/name": NOOP, "app.kubernetes.io/component": "webhook"}
    template = copy.deepcopy(deployment["spec"]["template"])
    template["metadata"] = {"labels": labels}
    spec = template["spec"]
    [container] = spec["containers"]
    container["command"] = ["python", "/bench/noop.py", "/etc/jetstream-pin/config/config.yaml"]
    container["volumeMounts"].append({"name": "bench", "mountPath": "/bench", "readOnly": True})
    spec["volumes"].append({"name": "bench", "configMap": {"name": NOOP}})
    for volume in spec["volumes"]:
        if volume["name"] == "tls":
            volume["secret"]["secretName"] = f"{NOOP}-tls"
    encoded = {
        "tls.crt": bundle.cert_pem, "tls.key": bundle.key_pem, "ca.crt": bundle.ca_pem,
    }  # fmt: skip
    service = get(cluster, "service", "jetstream-pin", namespace=RELEASE_NAMESPACE)
    metadata = {"name": NOOP, "namespace": RELEASE_NAMESPACE}
    plane.apply([
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
         "data": {"noop.py": (ROOT / "bench" / "noop.py").read_text()}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": f"{NOOP}-tls", "namespace": RELEASE_NAMESPACE},
         "data": {k: base64.b64encode(v).decode() for k, v in encoded.items()}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
         "spec": {"replicas": deployment["spec"]["replicas"],
                  "selector": {"matchLabels": labels}, "template": template}},
        {"apiVersion": "v1", "kind": "Service", "metadata": metadata,
         "spec": {"selector": labels, "ports": service["spec"]["ports"]}},
    ])  # fmt: skip
    plane.kubectl("-n", RELEASE_NAMESPACE, "rollout", "status", f"deployment/{NOOP}",
                  "--timeout=180s", timeout=200)  # fmt: skip
    registered = get(cluster, "mutatingwebhookconfiguration", "jetstream-pin")
    configuration = {"apiVersion": registered["apiVersion"], "kind": registered["kind"],
                     "metadata": {"name": NOOP}, "webhooks": registered["webhooks"]}  # fmt: skip
    [hook] = configuration["webhooks"]
    hook["name"] = NOOP_HOOK
    hook["clientConfig"] = {
        "service": {**hook["clientConfig"]["service"], "name": NOOP},
        "caBundle": base64.b64encode(bundle.ca_pem).decode(),
    }
    for expression in hook["namespaceSelector"]["matchExpressions"]:
        if expression["operator"] == "In":
            expression["values"] = [NOOP_PODS]
    plane.apply([configuration])


def remove_noop(cluster: NodeCluster) -> None:
    kubectl = cluster.plane.kubectl
    kubectl("delete", "mutatingwebhookconfiguration", NOOP, "--ignore-not-found")
    for kind in ("deployment", "service", "configmap", "secret"):
        name = f"{NOOP}-tls" if kind == "secret" else NOOP
        kubectl("-n", RELEASE_NAMESPACE, "delete", kind, name, "--ignore-not-found")
    for namespace in (NOOP_PODS, STREAM_NAMESPACE):
        kubectl("-n", namespace, "delete", "pods", "-l", "workflows.argoproj.io/workflow=stream",
                "--wait=false")  # fmt: skip


def create_alternating(cluster: NodeCluster, count: int) -> dict[str, list[float]]:
    """`count` creates in each namespace, one after the other; client latencies (s)."""
    latencies: dict[str, list[float]] = {STREAM_NAMESPACE: [], NOOP_PODS: []}
    with cluster.plane.api() as api:
        for _ in range(count):
            for namespace in latencies:
                started = time.perf_counter()
                answer = create_pod(cluster.plane, stream_pod(namespace), api=api)
                latencies[namespace].append(time.perf_counter() - started)
                if answer.status != 201:
                    raise SystemExit(f"create in {namespace}: {answer.status} {answer.message}")
                if namespace == STREAM_NAMESPACE and not is_pinned(answer.body):
                    raise SystemExit("a pod was not pinned")
    return latencies


def histogram(text: str, webhook: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of the API server's histogram for `webhook`'s
    admitted CREATEs."""
    buckets: dict[float, float] = {}
    pattern = re.compile(rf"^{METRIC}_bucket\{{(.*)\}} (\S+)$")
    for line in text.splitlines():
        found = pattern.match(line)
        if not found:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1)))
        if labels.get("name") != webhook or labels.get("operation") != "CREATE":
            continue
        if labels.get("rejected") != "false":
            continue
        bound = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        buckets[bound] = buckets.get(bound, 0.0) + float(found.group(2))
    return sorted(buckets.items())


def quantile(buckets: list[tuple[float, float]], fraction: float) -> float:
    """histogram_quantile: linear within the bucket that holds the rank."""
    total = buckets[-1][1]
    rank = fraction * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


Buckets = list[tuple[float, float]]


def _subtract(after: Buckets, before: Buckets) -> Buckets:
    earlier = dict(before)
    return [(bound, count - earlier.get(bound, 0.0)) for bound, count in after]


def run(cluster: NodeCluster, count: int) -> None:
    deploy_noop(cluster)
    try:
        create_alternating(cluster, 20)  # connections, caches
        raw = cluster.plane.kubectl("get", "--raw", "/metrics").stdout
        before = {hook: histogram(raw, hook) for hook in (PINNED_HOOK, NOOP_HOOK)}
        latencies = create_alternating(cluster, count)
        raw = cluster.plane.kubectl("get", "--raw", "/metrics").stdout
        print(f"{count} pod creates per webhook, alternating, one client; Kubernetes "
              f"{cluster.plane.version}, both webhooks two replicas of the same image")  # fmt: skip
        print("| webhook | API server p50 ms | API server p99 ms | client p50 ms | client p99 ms |")
        print("|---|---|---|---|---|")
        results = {}
        for hook, namespace in ((PINNED_HOOK, STREAM_NAMESPACE), (NOOP_HOOK, NOOP_PODS)):
            buckets = _subtract(histogram(raw, hook), before[hook])
            client = sorted(latencies[namespace])
            p99 = client[min(len(client) - 1, int(0.99 * len(client)))]
            results[hook] = (quantile(buckets, 0.5), quantile(buckets, 0.99))
            print(f"| {hook} | {results[hook][0] * 1000:.1f} | {results[hook][1] * 1000:.1f} | "
                  f"{client[len(client) // 2] * 1000:.1f} | {p99 * 1000:.1f} |")  # fmt: skip
        pinned, noop = results[PINNED_HOOK], results[NOOP_HOOK]
        print(f"\njetstream-pin / no-op (API server's measure): p50 {pinned[0] / noop[0]:.2f}, "
              f"p99 {pinned[1] / noop[1]:.2f}")  # fmt: skip
        print(
            f"buckets (s, cumulative) of {PINNED_HOOK}: "
            f"{_subtract(histogram(raw, PINNED_HOOK), before[PINNED_HOOK])}"
        )
        print(
            f"buckets (s, cumulative) of {NOOP_HOOK}: "
            f"{_subtract(histogram(raw, NOOP_HOOK), before[NOOP_HOOK])}"
        )
    finally:
        remove_noop(cluster)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=300, help="creates per webhook")
    arguments = parser.parse_args()
    state = ROOT / ".tools" / "cluster"
    with ExitStack() as stack:
        if (state / STATE_FILE).exists() and "node" in json.loads((state / STATE_FILE).read_text()):
            cluster = NodeCluster.load(state)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-node-")))
            cluster = NodeCluster.up(folder / "cluster", with_argo=False)
            stack.callback(cluster.down)
        run(cluster, arguments.pods)


if __name__ == "__main__":
    main()
