"""The node answers a user's everyday questions: logs, exec, metrics through the Service."""

from __future__ import annotations

import json
from typing import Any

from harness.builders import JETSTREAM
from harness.controlplane.nodecluster import STREAM_NAMESPACE, NodeCluster, get
from harness.controlplane.registration import RELEASE_NAMESPACE
from tests.node.cluster import exec_in, webhook_pods

RELEASE = "jetstream-pin"


def test_pod_logs_are_the_webhooks_json_lines(node_cluster: NodeCluster) -> None:
    lines = []
    for pod in webhook_pods(node_cluster):
        logs = node_cluster.plane.kubectl(
            "-n", RELEASE_NAMESPACE, "logs", pod["metadata"]["name"], "-c", "webhook"
        ).stdout
        lines += [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert lines, "no JSON log line from the webhook pods"


def test_exec_runs_check_in_the_webhook_pod_as_its_own_least_privileged_identity(
    node_cluster: NodeCluster,
) -> None:
    [pod, *_] = webhook_pods(node_cluster)
    done = exec_in(
        node_cluster, pod["metadata"]["name"], "jetstream-pin", "check",
        f"--namespace={STREAM_NAMESPACE}", f"--image={JETSTREAM}:latest",
    )  # fmt: skip
    # The webhook's ServiceAccount may not create pods, not even as a dry run: the check
    # ran in the pod and says so.
    assert done.returncode == 2, done
    assert 'cannot create resource "pods"' in done.stdout + done.stderr, done


def _metrics_pod(cluster: NodeCluster) -> dict[str, Any]:
    """A pod of the webhook's own image reading /metrics through the Service's address."""
    script = (
        "import os, socket, ssl\n"
        "host = os.environ['JETSTREAM_PIN_SERVICE_HOST']\n"
        "port = int(os.environ['JETSTREAM_PIN_SERVICE_PORT_ADMIN'])\n"
        "context = ssl.create_default_context(cafile='/tls/ca.crt')\n"
        "name = 'jetstream-pin.jetstream-pin.svc'\n"
        "with socket.create_connection((host, port), 10) as raw:\n"
        "    with context.wrap_socket(raw, server_hostname=name) as tls:\n"
        "        tls.sendall(f'GET /metrics HTTP/1.1\\r\\nHost: {name}\\r\\n"
        "Connection: close\\r\\n\\r\\n'.encode())\n"
        "        print(b''.join(iter(lambda: tls.recv(65536), b'')).decode())\n"
    )
    [deployment] = get(cluster, "deployment", RELEASE, namespace=RELEASE_NAMESPACE)["spec"][
        "template"]["spec"]["containers"]  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "read-metrics", "namespace": RELEASE_NAMESPACE},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "read", "image": deployment["image"],
                "command": ["python", "-c", script],
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": True}],
            }],
            "volumes": [{"name": "tls", "secret": {"secretName": f"{RELEASE}-tls"}}],
        },
    }  # fmt: skip


def test_metrics_are_read_through_the_service_from_a_pod(node_cluster: NodeCluster) -> None:
    plane = node_cluster.plane
    plane.apply([_metrics_pod(node_cluster)])

    def phase() -> str:
        pod = get(node_cluster, "pod", "read-metrics", namespace=RELEASE_NAMESPACE)
        return str(pod["status"].get("phase", ""))

    try:
        plane.wait_for(
            lambda: phase() in ("Succeeded", "Failed"), 120, "the metrics pod to end", phase
        )
        logs = plane.kubectl("-n", RELEASE_NAMESPACE, "logs", "read-metrics").stdout
        assert phase() == "Succeeded", logs
        assert "HTTP/1.1 200" in logs
        assert "jetstream_pin_" in logs
    finally:
        plane.kubectl("-n", RELEASE_NAMESPACE, "delete", "pod", "read-metrics", "--wait=false")
