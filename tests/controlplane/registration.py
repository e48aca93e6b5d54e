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
from dataclasses import dataclass
from typing import Any

from tests import helm
from tests.builders import JETSTREAM
from tests.controlplane.plane import ControlPlane

RELEASE_NAMESPACE = "jetstream-pin"
WEBHOOK_TEMPLATE = "templates/mutatingwebhook.yaml"
# A pin no parser accepts: every mode answers it at once with a message of its own,
# without a lookup or a side effect, so it shows when the webhook is being called.
PROBE_PIN = "probe-not-a-pin"


def configuration(
    release: str,
    url: str,
    ca_pem: bytes,
    kube_version: str,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The chart's MutatingWebhookConfiguration, pointed at `url`."""
    [rendered] = helm.render(
        release, RELEASE_NAMESPACE, kube_version.lstrip("v"), values=values,
        extra=("--show-only", WEBHOOK_TEMPLATE),
    )  # fmt: skip
    for hook in rendered["webhooks"]:
        hook["clientConfig"] = {"url": url, "caBundle": base64.b64encode(ca_pem).decode()}
    return rendered


@dataclass(frozen=True)
class Probe:
    """What a client saw creating the probe pod (server-side dry run)."""

    stored: dict[str, Any] | None
    stderr: str

    @property
    def reached_webhook(self) -> bool:
        return "jetstream-pin" in self.stderr or "failed calling webhook" in self.stderr


def probe_pod(namespace: str, name: str = "probe") -> dict[str, Any]:
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


def probe(plane: ControlPlane, namespace: str) -> Probe:
    result = plane.kubectl(
        "create", "--dry-run=server", "-o", "json", "-f", "-",
        input_text=json.dumps(probe_pod(namespace)), check=False,
    )  # fmt: skip
    stored = json.loads(result.stdout) if result.returncode == 0 else None
    return Probe(stored, result.stderr)


def register(
    plane: ControlPlane, configuration: dict[str, Any], namespace: str, timeout: float = 30
) -> None:
    """Apply the configuration and return once the API server calls it for `namespace`.

    The API server picks new configurations up asynchronously; the probe pod
    shows when it has (a configuration that ignores unreachable webhooks
    cannot be told from none, so `Ignore` callers should register reachable).
    """
    plane.apply([configuration])
    deadline = time.monotonic() + timeout
    while not probe(plane, namespace).reached_webhook:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{configuration['metadata']['name']}: not called for {namespace} after {timeout} s"
            )
        time.sleep(0.2)


def unregister(plane: ControlPlane, name: str) -> None:
    plane.kubectl("delete", "mutatingwebhookconfiguration", name, "--ignore-not-found")
