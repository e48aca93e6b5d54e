"""AdmissionReview v1 on the wire: reading requests, shaping responses.

Only the format lives here. A request that is not a well-formed
AdmissionReview v1 raises `MalformedReview`, which the app turns into an
HTTP 400 naming the problem; everything else is answered inside a review.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.core import wirejson

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
WARNING_LIMIT = 120
AUDIT_KEY = re.compile(r"[a-z0-9]([-a-z0-9._]{0,61}[a-z0-9])?")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


class MalformedReview(ValueError):
    pass


@dataclass(frozen=True)
class AdmissionRequest:
    uid: str
    kind: str
    group: str
    version: str
    operation: str
    namespace: str
    name: str
    object: Any
    dry_run: bool

    @property
    def is_pod_create(self) -> bool:
        return (self.group, self.version, self.kind, self.operation) == ("", "v1", "Pod", "CREATE")


def parse_review(document: Any) -> AdmissionRequest:
    if not isinstance(document, dict):
        raise MalformedReview("the body is not a JSON object")
    if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
        raise MalformedReview(f"the body is not an {KIND} of apiVersion {API_VERSION}")
    request = document.get("request")
    if not isinstance(request, dict):
        raise MalformedReview("request is missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid or len(uid) > 256:
        raise MalformedReview("request.uid is missing or not a string of 1 to 256 characters")
    kind = request.get("kind")
    if not isinstance(kind, dict) or not all(
        isinstance(kind.get(k), str) for k in ("group", "version", "kind")
    ):
        raise MalformedReview("request.kind must have string group, version and kind")
    operation = request.get("operation")
    if not isinstance(operation, str):
        raise MalformedReview("request.operation is missing or not a string")
    namespace = request.get("namespace", "")
    name = request.get("name", "")
    dry_run = request.get("dryRun", False)
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise MalformedReview("request.namespace and request.name must be strings")
    if not isinstance(dry_run, bool):
        raise MalformedReview("request.dryRun must be true or false")
    return AdmissionRequest(
        uid=uid,
        kind=kind["kind"],
        group=kind["group"],
        version=kind["version"],
        operation=operation,
        namespace=namespace,
        name=name,
        object=request.get("object"),
        dry_run=dry_run,
    )


def one_line(text: str, limit: int = WARNING_LIMIT) -> str:
    """Warnings are shown verbatim by kubectl and Argo: one printable line, bounded."""
    flat = _UNPRINTABLE.sub("?", " ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def allowed(
    uid: str,
    patch: Sequence[Mapping[str, Any]] = (),
    warnings: Sequence[str] = (),
    audit: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if patch:
        encoded = wirejson.dumps(list(patch))
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(encoded).decode()
    return _review(response, warnings, audit)


def refused(
    uid: str,
    code: int,
    reason: str,
    message: str,
    warnings: Sequence[str] = (),
    audit: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    status = {"code": code, "reason": reason, "message": message, "status": "Failure"}
    return _review({"uid": uid, "allowed": False, "status": status}, warnings, audit)


def _review(
    response: dict[str, Any], warnings: Sequence[str], audit: Mapping[str, str] | None
) -> dict[str, Any]:
    if warnings:
        response["warnings"] = [one_line(w) for w in warnings]
    if audit:
        bad = [k for k in audit if not AUDIT_KEY.fullmatch(k)]
        if bad:
            raise ValueError(f"audit annotation keys must be short DNS-like names: {bad}")
        response["auditAnnotations"] = dict(audit)
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}
