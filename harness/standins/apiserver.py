"""A stand-in of the Kubernetes API server: HTTPS on 127.0.0.1, objects kept in memory.

It answers the few paths jetstream-pin uses (Workflows, ConfigMaps, Events,
Secrets, MutatingWebhookConfigurations) the way the real one does: bearer
token required, `Status` bodies for errors, 404 for absent objects, 409 for a
stale resourceVersion, JSON Patch for PATCH. The real `kubernetes` client
talks to it through a generated kubeconfig.
"""

from __future__ import annotations

import base64
import copy
import itertools
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from harness.standins.base import Reply, Request, StandInServer, json_reply, serving
from webhook import certs

TOKEN = "stand-in-service-account-token"
_WORKFLOW = re.compile(r"/apis/argoproj\.io/v1alpha1/namespaces/([^/]+)/workflows/([^/]+)")
_NAMESPACED = re.compile(r"/api/v1/namespaces/([^/]+)/(configmaps|secrets|events)(?:/([^/]+))?")
_WEBHOOK = re.compile(
    r"/apis/admissionregistration\.k8s\.io/v1/mutatingwebhookconfigurations/([^/]+)"
)


def status(code: int, reason: str, message: str) -> Reply:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip
    return json_reply(body, code)


@dataclass
class ApiServerStandIn:
    """What the stand-in serves; tests put objects in and read what was written."""

    workflows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)  # path fragment -> status code
    _versions: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_workflow(
        self,
        namespace: str,
        name: str,
        labels: dict[str, str] | None = None,
        created: str | None = None,
    ) -> str:
        """A Workflow created `created` (RFC 3339; default: now, as the API server sets it)."""
        uid = f"uid-{name}"
        created = created or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.workflows[(namespace, name)] = {
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "labels": labels or {},
                         "creationTimestamp": created},
            "spec": {"entrypoint": "main"},
        }  # fmt: skip
        return uid

    def add_config_map(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self.objects[("configmaps", namespace, name)] = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
            "data": data,
        }  # fmt: skip

    def add_secret(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        body = copy.deepcopy(body)
        body["metadata"] = {"name": name, "namespace": namespace, "resourceVersion": "1"}
        self.objects[("secrets", namespace, name)] = body

    def secret(self, namespace: str, name: str) -> dict[str, Any]:
        return self.objects[("secrets", namespace, name)]

    def secret_file(self, namespace: str, name: str, key: str) -> bytes:
        return base64.b64decode(self.secret(namespace, name)["data"][key])

    def add_webhook(self, name: str, hooks: list[str]) -> None:
        self.webhooks[name] = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name, "resourceVersion": "1"},
            "webhooks": [
                {
                    "name": hook,
                    "clientConfig": {"service": {"name": "svc", "namespace": "ns", "port": 443}},
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                }
                for hook in hooks
            ],
        }

    def __call__(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return status(401, "Unauthorized", "Unauthorized")
        for fragment, code in self.failing.items():
            if fragment in request.path:
                return status(code, "InternalError", f"failing on purpose; echo {TOKEN}")
        with self._lock:
            return self._route(request)

    def _route(self, request: Request) -> Reply:
        if match := _WORKFLOW.fullmatch(request.path):
            found = self.workflows.get((match[1], match[2]))
            if found is None:
                return status(404, "NotFound", f'workflows.argoproj.io "{match[2]}" not found')
            if request.method == "GET":
                return json_reply(found)
            if request.method == "PATCH":
                return self._patch_workflow(request, (match[1], match[2]), found)
            return status(405, "MethodNotAllowed", f"{request.method} {request.path}")
        if match := _NAMESPACED.fullmatch(request.path):
            return self._namespaced(request, match[2], match[1], match[3])
        if match := _WEBHOOK.fullmatch(request.path):
            return self._webhook(request, match[1])
        return status(404, "NotFound", f"the server could not find {request.path}")

    def _namespaced(self, request: Request, kind: str, namespace: str, name: str | None) -> Reply:
        if kind == "events":
            if request.method != "POST" or name is not None:
                return status(405, "MethodNotAllowed", "events: create only here")
            event = request.json()
            self.events.append(event)
            return json_reply(event, 201)
        key = (kind, namespace, name or "")
        if request.method == "GET" and name:
            found = self.objects.get(key)
            if found is None:
                return status(404, "NotFound", f'{kind} "{name}" not found')
            return json_reply(found)
        if request.method == "POST" and name is None:
            body = request.json()
            key = (kind, namespace, body["metadata"]["name"])
            if key in self.objects:
                return status(409, "AlreadyExists", f"{kind} already exists")
            body["metadata"]["resourceVersion"] = str(next(self._versions) + 100)
            self.objects[key] = body
            return json_reply(body, 201)
        if request.method == "PUT" and name:
            body = request.json()
            current = self.objects.get(key)
            if current is None:
                return status(404, "NotFound", f'{kind} "{name}" not found')
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return status(409, "Conflict", "the object has been modified")
            body["metadata"]["resourceVersion"] = str(next(self._versions) + 100)
            self.objects[key] = body
            return json_reply(body)
        return status(405, "MethodNotAllowed", f"{request.method} {request.path}")

    def _patch_workflow(
        self, request: Request, key: tuple[str, str], found: dict[str, Any]
    ) -> Reply:
        """JSON Patch as the API server applies it: `test` against null passes for a
        missing member; any failed operation is a 422 and changes nothing."""
        if request.headers.get("content-type") != "application/json-patch+json":
            return status(415, "UnsupportedMediaType", "only JSON Patch here")
        operations = request.json()
        remaining = []
        for op in operations:
            if op.get("op") == "test" and op.get("value") is None:
                try:
                    value = jsonpatch.JsonPointer(op["path"]).resolve(found, None)
                except jsonpatch.JsonPointerException:
                    return status(422, "", "the server rejected our request: test failed")
                if value is not None:
                    return status(422, "", "the server rejected our request: test failed")
                continue
            remaining.append(op)
        try:
            patched = jsonpatch.apply_patch(found, remaining)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as err:
            return status(422, "", f"the server rejected our request: {err}")
        self.workflows[key] = patched
        return json_reply(patched)

    def _webhook(self, request: Request, name: str) -> Reply:
        found = self.webhooks.get(name)
        if found is None:
            return status(404, "NotFound", f'mutatingwebhookconfigurations "{name}" not found')
        if request.method == "GET":
            return json_reply(found)
        if request.method == "PATCH":
            if request.headers.get("content-type") != "application/json-patch+json":
                return status(415, "UnsupportedMediaType", "this stand-in takes JSON Patch")
            try:
                patched = jsonpatch.apply_patch(found, request.json())
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as err:
                return status(422, "Invalid", str(err))
            self.webhooks[name] = patched
            return json_reply(patched)
        return status(405, "MethodNotAllowed", request.method)


@dataclass
class RunningApiServer:
    """The stand-in being served: what it holds (`cluster`), what it was asked
    (`stand_in`), and a kubeconfig the real client reads to reach it."""

    cluster: ApiServerStandIn
    stand_in: StandInServer
    kubeconfig: Path


def write_kubeconfig(path: Path, server: str, ca_pem: bytes, token: str = TOKEN) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "stand-in",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": "jetstream-pin", "user": {"token": token}}],
        "contexts": [
            {"name": "stand-in", "context": {"cluster": "stand-in", "user": "jetstream-pin"}}
        ],
        "current-context": "stand-in",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def api_server(
    workdir: Path, cluster: ApiServerStandIn | None = None
) -> Iterator[RunningApiServer]:
    """The stand-in over HTTPS with its own CA, and a kubeconfig that trusts it."""
    cluster = cluster or ApiServerStandIn()
    tls_dir = workdir / "apiserver-tls"
    certs.write(certs.issue(["localhost"], ["127.0.0.1"]), tls_dir)
    with serving(cluster, tls=(tls_dir / certs.CERT_FILE, tls_dir / certs.KEY_FILE)) as s:
        kubeconfig = write_kubeconfig(
            workdir / "kubeconfig.yaml", s.url, (tls_dir / certs.CA_FILE).read_bytes()
        )
        yield RunningApiServer(cluster, s, kubeconfig)
