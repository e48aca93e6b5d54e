"""Checking pods the way the API server would: against the Kubernetes OpenAPI schema."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import kubernetes_validate

from webhook.core.review import decode_patch

KUBERNETES_VERSION = "1.37.0"


def validate(resource: dict[str, Any]) -> None:
    """Raise kubernetes_validate.ValidationError unless `resource` is a valid object."""
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def apply_response(pod: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    patched: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(pod), decode_patch(response))
    return patched
