"""Registering a webhook server with the API server exactly as the chart renders it.

The MutatingWebhookConfiguration comes from the real chart through the real
helm; only `clientConfig` is replaced, by `url: https://127.0.0.1:PORT/mutate`
and the caBundle of the certificate the server uses (the API server cannot
reach a Service without a cluster network). The release name names the
configuration, so several webhook servers (one per test configuration) can be
registered side by side, each for its own namespaces.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from harness import helm
from harness.builders import JETSTREAM
from harness.controlplane.plane import ControlPlane

RELEASE_NAMESPACE = "jetstream-pin"
WEBHOOK_TEMPLATE = "templates/mutatingwebhook.yaml"
# A pin no parser accepts: the webhook answers it at once, in every mode, without a
# lookup or a side effect.
PROBE_PIN = "probe-not-a-pin"
MUTATION_AUDIT = "mutation.webhook.admission.k8s.io/"


def configuration(
    release: str,
    url: str,
    ca_pem: bytes,
    kube_version: str,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The chart's MutatingWebhookConfiguration, pointed at `url`."""
    rendered = helm.webhook_configuration(helm.render(
        release, RELEASE_NAMESPACE, kube_version.lstrip("v"), values=values,
        extra=("--show-only", WEBHOOK_TEMPLATE),
    ))  # fmt: skip
    for hook in rendered["webhooks"]:
        hook["clientConfig"] = {"url": url, "caBundle": base64.b64encode(ca_pem).decode()}
    return rendered


def probe_pod(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "workflows.argoproj.io/workflow": "probe",
                "jetstream/experiment-slug": "probe",
                "jetstream/pin": PROBE_PIN,
            },
        },
        "spec": {"containers": [{"name": "main", "image": f"{JETSTREAM}:latest"}]},
    }


def called(plane: ControlPlane, configuration_name: str, namespace: str) -> bool:
    """Whether the API server calls `configuration_name` for a pod in `namespace` now.

    A server-side dry run of the probe pod; the audit log then records each
    mutating webhook the API server called for it (or the client hears that the
    call failed). Works for any webhook, even one that changes nothing.
    """
    name = f"probe-{uuid.uuid4().hex[:10]}"
    start = plane.audit_log.stat().st_size if plane.audit_log.exists() else 0
    result = plane.kubectl(
        "create", "--dry-run=server", "-o", "name", "-f", "-",
        input_text=json.dumps(probe_pod(namespace, name)), check=False,
    )  # fmt: skip
    if "failed calling webhook" in result.stderr:
        return True
    for event in plane.audit_events(start):
        if event.get("objectRef", {}).get("name") != name:
            continue
        for key, value in event.get("annotations", {}).items():
            if key.startswith(MUTATION_AUDIT) and configuration_name in value:
                return True
    return False


def register(
    plane: ControlPlane, configuration: dict[str, Any], namespace: str, timeout: float = 30
) -> None:
    """Apply the configuration and return once the API server calls it for `namespace`
    (it picks new configurations up asynchronously)."""
    plane.apply([configuration])
    name = configuration["metadata"]["name"]
    deadline = time.monotonic() + timeout
    while not called(plane, name, namespace):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: not called for {namespace} after {timeout} s")
        time.sleep(0.2)


def unregister(plane: ControlPlane, name: str) -> None:
    plane.kubectl("delete", "mutatingwebhookconfiguration", name, "--ignore-not-found")
