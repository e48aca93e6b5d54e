"""Operator pins read through the Kubernetes API: Workflow labels and the overrides ConfigMap.

Argo never copies a Workflow's labels to its pods, so `argo submit -l
jetstream/pin=latest` only reaches the webhook if it reads the Workflow. Both
answers are cached for a few seconds (webhook.sources.cached.CachedOverrides):
an on-call engineer's change shows up quickly, and a burst of pods from one
Workflow costs one API call. A Workflow or ConfigMap that does not exist
means "no override"; any other failure is a SourceError and follows the
failure policy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubernetes import client as k8s

from webhook.config import ConfigMapRef
from webhook.core.pods import LABEL_PIN
from webhook.core.times import utc_now
from webhook.kube.client import is_not_found, source_error
from webhook.sources import SlugPins, SourceError

WORKFLOW_GROUP = "argoproj.io"
WORKFLOW_VERSION = "v1alpha1"
WORKFLOW_PLURAL = "workflows"
WORKFLOW_SOURCE = "Kubernetes API (Workflows)"
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class KubeOverrides:
    """The `OverrideReader` of a cluster; `config_map` None: Workflow labels only.

    Every call asks the API server; the wiring puts it behind
    `webhook.sources.cached.CachedOverrides`, like every other source.
    """

    def __init__(
        self,
        api: k8s.ApiClient,
        *,
        workflow_labels: bool = True,
        config_map: ConfigMapRef | None = None,
        timeout: float = 1.0,
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        self.api = api
        self.workflow_labels = workflow_labels
        self.config_map = config_map
        self.timeout = timeout
        self._wall = wall
        self.config_map_source = (
            f"overrides ConfigMap {config_map.namespace}/{config_map.name}" if config_map else ""
        )
        self.name = "Kubernetes API"

    def workflow_pin(self, namespace: str, workflow: str) -> str | None:
        if not self.workflow_labels or not namespace:
            return None
        if not _NAME.fullmatch(workflow):
            return None  # not a Workflow name; the API server refuses such a label anyway
        return self._read(namespace, workflow)

    def slug_pins(self) -> SlugPins:
        """Every entry of the overrides ConfigMap (none without one), and when it was read."""
        if self.config_map is None:
            return SlugPins({}, self._wall())
        return self._read_overrides()

    def _read(self, namespace: str, workflow: str) -> str | None:
        try:
            body: Any = k8s.CustomObjectsApi(self.api).get_namespaced_custom_object(
                WORKFLOW_GROUP,
                WORKFLOW_VERSION,
                namespace,
                WORKFLOW_PLURAL,
                workflow,
                _request_timeout=self.timeout,
            )
        except Exception as err:
            if is_not_found(err):
                return None
            raise source_error(WORKFLOW_SOURCE, self.api, err, self.timeout) from None
        labels = body.get("metadata", {}).get("labels") if isinstance(body, dict) else None
        if labels is not None and not isinstance(labels, dict):
            raise SourceError(WORKFLOW_SOURCE, f"Workflow {namespace}/{workflow}: malformed labels")
        value = (labels or {}).get(LABEL_PIN)
        return value if isinstance(value, str) else None

    def _read_overrides(self) -> SlugPins:
        ref = self.config_map
        assert ref is not None
        read_at = self._wall()
        try:
            found = k8s.CoreV1Api(self.api).read_namespaced_config_map(
                ref.name, ref.namespace, _request_timeout=self.timeout
            )
        except Exception as err:
            if is_not_found(err):
                return SlugPins({}, read_at)
            raise source_error(self.config_map_source, self.api, err, self.timeout) from None
        data = found.data or {}
        return SlugPins({str(slug): str(pin).strip() for slug, pin in data.items()}, read_at)
