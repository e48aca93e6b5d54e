"""Registering the webhook only once it can answer: what the chart's post-install Job runs.

A MutatingWebhookConfiguration that exists before its caBundle is set, or
before a serving pod is ready, makes the API server refuse every matching pod
("failed calling webhook"). So in the chart's selfManaged mode the
configuration is not a chart object: the chart keeps it, rendered, in a
ConfigMap, and `jetstream-pin certs --register-from ...` creates or updates it
from there, with the caBundle set, once the Deployment has a ready replica.
The configuration is owned by a cluster-scoped chart object (a ClusterRole),
so `helm uninstall` still removes it, through the garbage collector.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client as k8s

from webhook.kube.certificates import read_webhook_configuration
from webhook.kube.client import is_not_found, source_error
from webhook.sources import SourceError

SOURCE = "Kubernetes API"
CONFIGURATION_KEY = "configuration.yaml"


@dataclass(frozen=True)
class Readiness:
    """What a Deployment's status says about serving."""

    ready: int
    wanted: int

    def serving(self) -> bool:
        return self.ready >= 1


def wait_until_serving(
    read: Callable[[], Readiness | None],
    timeout: float,
    interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Readiness:
    """Poll `read` (None: not there yet) until one replica is ready, or fail at `timeout`."""
    deadline = clock() + timeout
    while True:
        seen = read()
        if seen is not None and seen.serving():
            return seen
        if clock() >= deadline:
            state = "does not exist" if seen is None else f"has {seen.ready}/{seen.wanted} ready"
            raise SourceError(
                SOURCE,
                f"the webhook Deployment {state} after {timeout:g} s; not registering a "
                "webhook no pod can answer (see `kubectl describe deployment`)",
            )
        sleep(interval)


def deployment_readiness(
    api: k8s.ApiClient, namespace: str, name: str, timeout: float
) -> Readiness | None:
    apps = k8s.AppsV1Api(api)
    try:
        deployment: Any = apps.read_namespaced_deployment(name, namespace, _request_timeout=timeout)
    except Exception as err:
        if is_not_found(err):
            return None
        raise source_error(SOURCE, api, err, timeout) from None
    status = deployment.status
    return Readiness((status and status.ready_replicas) or 0, deployment.spec.replicas or 0)


def read_configuration(
    api: k8s.ApiClient, namespace: str, name: str, timeout: float
) -> dict[str, Any]:
    """The configuration the chart rendered into ConfigMap `namespace/name`."""
    try:
        config_map: Any = k8s.CoreV1Api(api).read_namespaced_config_map(
            name, namespace, _request_timeout=timeout
        )
    except Exception as err:
        raise source_error(SOURCE, api, err, timeout) from None
    text = (config_map.data or {}).get(CONFIGURATION_KEY)
    document = yaml.safe_load(text) if text else None
    if not isinstance(document, dict) or document.get("kind") != "MutatingWebhookConfiguration":
        raise SourceError(
            SOURCE,
            f"ConfigMap {namespace}/{name}: {CONFIGURATION_KEY} holds no "
            "MutatingWebhookConfiguration",
        )
    return document


def with_trust(
    configuration: dict[str, Any], ca_bundle: bytes, owner: dict[str, str] | None
) -> dict[str, Any]:
    """A copy with the caBundle on every webhook and, if given, the owner reference."""
    body: dict[str, Any] = yaml.safe_load(yaml.safe_dump(configuration))
    encoded = base64.b64encode(ca_bundle).decode()
    for hook in body.get("webhooks") or []:
        hook.setdefault("clientConfig", {})["caBundle"] = encoded
    if owner is not None:
        body["metadata"]["ownerReferences"] = [owner]
    return body


def cluster_role_owner(api: k8s.ApiClient, name: str, timeout: float) -> dict[str, str]:
    try:
        role: Any = k8s.RbacAuthorizationV1Api(api).read_cluster_role(
            name, _request_timeout=timeout
        )
    except Exception as err:
        raise source_error(SOURCE, api, err, timeout) from None
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "name": name,
        "uid": role.metadata.uid,
    }


HELM_RELEASE_ANNOTATION = "meta.helm.sh/release-name"
HELM_RESOURCE_POLICY = "helm.sh/resource-policy"


def keep_from_helm(api: k8s.ApiClient, name: str, timeout: float) -> bool:
    """Before an upgrade: a configuration that an earlier release rendered as a chart
    object (Helm's release annotation, no owner) gets `helm.sh/resource-policy: keep`.

    The new chart no longer renders it, so Helm would delete it during the upgrade
    and leave no webhook until the post-upgrade Job registers it again; kept, it
    goes on serving until that Job replaces it (its metadata then has neither
    annotation, and the owner reference takes over its removal). True if marked."""
    existing = read_webhook_configuration(api, name, timeout)
    if existing is None:
        return False
    annotations = existing.metadata.annotations or {}
    if HELM_RELEASE_ANNOTATION not in annotations or existing.metadata.owner_references:
        return False
    if annotations.get(HELM_RESOURCE_POLICY) == "keep":
        return True
    key = HELM_RESOURCE_POLICY.replace("/", "~1")
    patch: Any = [{"op": "add", "path": f"/metadata/annotations/{key}", "value": "keep"}]
    try:
        k8s.AdmissionregistrationV1Api(api).patch_mutating_webhook_configuration(
            name, patch, _request_timeout=timeout, _content_type="application/json-patch+json"
        )
    except Exception as err:
        raise source_error(SOURCE, api, err, timeout) from None
    return True


def apply_configuration(api: k8s.ApiClient, body: dict[str, Any], timeout: float) -> str:
    """Create the configuration, or replace the one there; returns what was done."""
    admission = k8s.AdmissionregistrationV1Api(api)
    name = body["metadata"]["name"]
    try:
        existing: Any = admission.read_mutating_webhook_configuration(
            name, _request_timeout=timeout
        )
    except Exception as err:
        if not is_not_found(err):
            raise source_error(SOURCE, api, err, timeout) from None
        existing = None
    wire: Any = body  # the client sends a dict as it is (camelCase, as the API wants)
    try:
        if existing is None:
            admission.create_mutating_webhook_configuration(wire, _request_timeout=timeout)
            return "created"
        body["metadata"]["resourceVersion"] = existing.metadata.resource_version
        admission.replace_mutating_webhook_configuration(name, wire, _request_timeout=timeout)
        return "updated"
    except Exception as err:
        raise source_error(SOURCE, api, err, timeout) from None
