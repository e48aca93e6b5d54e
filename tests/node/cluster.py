"""Reading the one-node cluster as a user would: kubectl's JSON, logs, exec, helm."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from harness.builders import ROOT
from harness.controlplane.nodecluster import NodeCluster, get
from harness.controlplane.registration import RELEASE_NAMESPACE

WEBHOOK_PODS = "app.kubernetes.io/instance={},app.kubernetes.io/component=webhook"


def webhook_pods(cluster: NodeCluster, release: str = "jetstream-pin",
                 namespace: str = RELEASE_NAMESPACE) -> list[dict[str, Any]]:  # fmt: skip
    """The release's webhook pods that are Running and not being deleted."""
    pods = get(cluster, "pods", "-l", WEBHOOK_PODS.format(release), namespace=namespace)
    return [
        p for p in pods["items"]
        if p["status"].get("phase") == "Running" and "deletionTimestamp" not in p["metadata"]
    ]  # fmt: skip


def exec_in(cluster: NodeCluster, pod: str, *command: str,
            namespace: str = RELEASE_NAMESPACE) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return cluster.plane.kubectl(
        "-n", namespace, "exec", pod, "-c", "webhook", "--", *command, check=False
    )


def jetstream_pin(*arguments: str) -> Any:
    """The `jetstream-pin` command on this machine, its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "webhook", *arguments], capture_output=True, text=True,
        timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)
