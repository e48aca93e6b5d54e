"""What a client sees when it creates a pod through the API server.

`create_pod` uses the official Python client and keeps what a user would
see: the status code and reason of a refusal, the API server's message, the
`Warning` headers (what kubectl prints as `Warning:`) and the object stored.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s

from harness.builders import fixture_review
from harness.controlplane.plane import ControlPlane

API_ACCESS_PREFIX = "kube-api-access-"
# Set by the API server's own admission plugins; a client must not send them.
SERVER_SET = ("priority", "preemptionPolicy", "serviceAccount")


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", ""))

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))

    def annotations(self) -> dict[str, str]:
        notes: dict[str, str] = self.body.get("metadata", {}).get("annotations") or {}
        return notes

    def container(self, name: str) -> dict[str, Any]:
        spec = self.body["spec"]
        for item in [*spec.get("initContainers", []), *spec["containers"]]:
            if item["name"] == name:
                found: dict[str, Any] = item
                return found
        raise KeyError(name)

    def env(self, container: str) -> dict[str, str]:
        return {e["name"]: e.get("value", "") for e in self.container(container).get("env", [])}


def _warnings(headers: Any) -> list[str]:
    """`299 - "text"` per RFC 7234; the API server sends one header per warning."""
    values = headers.getlist("Warning") if hasattr(headers, "getlist") else []
    texts = []
    for value in values:
        text = value.split(" ", 2)[-1]
        texts.append(text.strip().removeprefix('"').removesuffix('"'))
    return texts


def create_pod(
    plane: ControlPlane,
    pod: dict[str, Any],
    dry_run: bool = False,
    api: k8s.ApiClient | None = None,
) -> Answer:
    namespace = pod["metadata"]["namespace"]
    owned = api is None
    api = api or plane.api()
    core: Any = k8s.CoreV1Api(api)  # raw answers (_preload_content=False) are untyped
    try:
        response = core.create_namespaced_pod(
            namespace, pod, dry_run="All" if dry_run else None, _preload_content=False
        )
        return Answer(response.status, json.loads(response.data), _warnings(response.headers))
    except k8s.ApiException as err:
        body = json.loads(err.body) if err.body else {}
        return Answer(err.status, body, _warnings(err.headers))
    finally:
        if owned:
            api.close()  # type: ignore[no-untyped-call]


def create_in(
    plane: ControlPlane,
    namespace: str,
    pod: dict[str, Any],
    dry_run: bool = False,
    named: bool = False,
) -> Answer:
    """Create `pod` in `namespace`; unless `named`, under a generated name (as Argo's pods
    are unique), so the builders' default name never collides."""
    metadata = pod["metadata"]
    metadata["namespace"] = namespace
    if not named:
        metadata["generateName"] = metadata.pop("name") + "-"
    return create_pod(plane, pod, dry_run)


def read_pod(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any] | None:
    with plane.api() as api:
        core: Any = k8s.CoreV1Api(api)
        try:
            response = core.read_namespaced_pod(name, namespace, _preload_content=False)
        except k8s.ApiException as err:
            if err.status == 404:
                return None
            raise
        stored: dict[str, Any] = json.loads(response.data)
        return stored


def fixture_pod(name: str, namespace: str) -> dict[str, Any]:
    """A recorded Argo pod, as its controller would send it (before the API server's
    own admission plugins added the service-account volume and priority)."""
    pod: dict[str, Any] = copy.deepcopy(fixture_review(name)["request"]["object"])
    metadata = pod["metadata"]
    for key in ("managedFields", "creationTimestamp", "uid", "resourceVersion"):
        metadata.pop(key, None)
    metadata["namespace"] = namespace
    pod.pop("status", None)
    spec = pod["spec"]
    for key in SERVER_SET:
        spec.pop(key, None)
    spec["volumes"] = [v for v in spec["volumes"] if not v["name"].startswith(API_ACCESS_PREFIX)]
    for item in [*spec.get("initContainers", []), *spec["containers"]]:
        mounts = item.get("volumeMounts", [])
        item["volumeMounts"] = [m for m in mounts if not m["name"].startswith(API_ACCESS_PREFIX)]
    return pod
