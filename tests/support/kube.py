"""Checking pods the way the API server would: against the Kubernetes OpenAPI schema."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from typing import Any

import jsonpatch
import kubernetes_validate

KUBERNETES_VERSION = "1.37.0"


def validate(resource: dict[str, Any]) -> None:
    """Raise kubernetes_validate.ValidationError unless `resource` is a valid object."""
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def decode_patch(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSONPatch carried by a review response (empty when there is none)."""
    body = response.get("response", {})
    if "patch" not in body:
        return []
    decoded: list[dict[str, Any]] = json.loads(base64.b64decode(body["patch"]))
    return decoded


def apply_response(pod: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    patched: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(pod), decode_patch(response))
    return patched
