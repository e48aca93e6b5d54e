"""Argo Workflows through the Kubernetes API: their identity, pin label and recorded decisions.

Each experiment's decision is one annotation on its Workflow
(`webhook.core.workflow_record`). Writing it is a JSON Patch whose first
operation tests that the annotation is absent (and that the Workflow is
still the one with that uid), so of two replicas deciding the same
experiment at once exactly one write succeeds; the other reads the winner
back. No resourceVersion precondition is used: Argo's controller updates the
Workflow all the time, and a patch of one annotation neither conflicts with
its updates nor with the decisions of other experiments.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s

from webhook.core.pods import LABEL_PIN
from webhook.core.times import NotATime, parse_rfc3339
from webhook.core.workflow_record import KEY_PREFIX
from webhook.kube.client import is_not_found, source_error
from webhook.sources import NotRecorded, SourceError, WorkflowState

log = logging.getLogger(__name__)

WORKFLOW_GROUP = "argoproj.io"
WORKFLOW_VERSION = "v1alpha1"
WORKFLOW_PLURAL = "workflows"
SOURCE = "Kubernetes API (Workflows)"
JSON_PATCH = "application/json-patch+json"


def _escape(key: str) -> str:
    """A JSON Pointer token: '~' and '/' escaped (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _created(metadata: dict[str, Any], where: str) -> datetime:
    text = metadata.get("creationTimestamp")
    try:
        return parse_rfc3339(str(text))
    except NotATime:
        raise SourceError(SOURCE, f"{where}: malformed creationTimestamp") from None


def workflow_state(
    body: Any, namespace: str, name: str, read_at: datetime | None = None
) -> WorkflowState:
    """A Workflow object as the webhook needs it; SourceError naming what is malformed."""
    where = f"Workflow {namespace}/{name}"
    metadata = body.get("metadata") if isinstance(body, dict) else None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("uid"), str):
        raise SourceError(SOURCE, f"{where}: malformed metadata")
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations")
    if not isinstance(labels, dict) or not isinstance(annotations or {}, dict):
        raise SourceError(SOURCE, f"{where}: malformed labels or annotations")
    pin = labels.get(LABEL_PIN)
    return WorkflowState(
        namespace=namespace,
        name=name,
        uid=metadata["uid"],
        created=_created(metadata, where),
        pin_label=pin if isinstance(pin, str) else None,
        records={
            k: v
            for k, v in (annotations or {}).items()
            if k.startswith(KEY_PREFIX) and isinstance(v, str)
        },
        has_annotations=annotations is not None,
        read_at=read_at,
    )


class KubeWorkflows:
    """Reads Workflows and writes decision annotations; every call bounded by `timeout`."""

    name = SOURCE

    def __init__(self, api: k8s.ApiClient, timeout: float = 1.0) -> None:
        self.api = api
        self.timeout = timeout
        self._objects = k8s.CustomObjectsApi(api)

    def workflow(self, namespace: str, name: str) -> WorkflowState | None:
        read_at = datetime.now(UTC)
        try:
            body = self._objects.get_namespaced_custom_object(
                WORKFLOW_GROUP,
                WORKFLOW_VERSION,
                namespace,
                WORKFLOW_PLURAL,
                name,
                _request_timeout=self.timeout,
            )
        except Exception as err:
            if is_not_found(err):
                return None
            raise source_error(SOURCE, self.api, err, self.timeout) from None
        return workflow_state(body, namespace, name, read_at)

    def record_many(self, state: WorkflowState, values: Mapping[str, str]) -> dict[str, str]:
        """Every value in one patch; if any key is taken, each on its own (`record`)."""
        if len(values) > 1:
            try:
                self._patch(state, self._operations_many(state, values))
                return dict(values)
            except k8s.ApiException as err:
                if err.status not in (409, 422):
                    raise source_error(SOURCE, self.api, err, self.timeout) from None
            except Exception as err:
                raise source_error(SOURCE, self.api, err, self.timeout) from None
        return {key: self.record(state, key, value) for key, value in values.items()}

    def record(self, state: WorkflowState, key: str, value: str) -> str:
        """Write `value` under `key` unless something is there; returns the value that stands."""
        for _attempt in range(3):
            try:
                self._patch(state, self._operations(state, key, value))
                return value
            except k8s.ApiException as err:
                if err.status not in (409, 422):
                    raise source_error(SOURCE, self.api, err, self.timeout) from None
                refusal = err
            except Exception as err:
                raise source_error(SOURCE, self.api, err, self.timeout) from None
            # A test failed (someone recorded first, or the annotations appeared) or
            # the write was invalid: the Workflow as it is now tells which.
            current = self.workflow(state.namespace, state.name)
            if current is None or current.uid != state.uid:
                raise SourceError(SOURCE, f"Workflow {state.namespace}/{state.name} is gone")
            if key in current.records:
                return current.records[key]
            if current.has_annotations == state.has_annotations:
                raise NotRecorded(SOURCE, _refusal_text(state, refusal))
            state = current
        raise SourceError(SOURCE, f"Workflow {state.namespace}/{state.name} kept changing")

    @staticmethod
    def _operations_many(state: WorkflowState, values: Mapping[str, str]) -> list[dict[str, Any]]:
        guard = {"op": "test", "path": "/metadata/uid", "value": state.uid}
        if not state.has_annotations:
            return [
                guard,
                {"op": "test", "path": "/metadata/annotations", "value": None},
                {"op": "add", "path": "/metadata/annotations", "value": dict(values)},
            ]
        operations: list[dict[str, Any]] = [guard]
        for key, value in values.items():
            path = f"/metadata/annotations/{_escape(key)}"
            operations += [
                {"op": "test", "path": path, "value": None},
                {"op": "add", "path": path, "value": value},
            ]
        return operations

    @staticmethod
    def _operations(state: WorkflowState, key: str, value: str) -> list[dict[str, Any]]:
        guard = {"op": "test", "path": "/metadata/uid", "value": state.uid}
        if not state.has_annotations:
            return [
                guard,
                {"op": "test", "path": "/metadata/annotations", "value": None},
                {"op": "add", "path": "/metadata/annotations", "value": {key: value}},
            ]
        path = f"/metadata/annotations/{_escape(key)}"
        # `test` against null passes only while the annotation is absent (the API
        # server's JSON Patch treats a missing member as null).
        return [
            guard,
            {"op": "test", "path": path, "value": None},
            {"op": "add", "path": path, "value": value},
        ]

    def _patch(self, state: WorkflowState, operations: list[dict[str, Any]]) -> None:
        answer: Any = self._objects.patch_namespaced_custom_object(
            WORKFLOW_GROUP,
            WORKFLOW_VERSION,
            state.namespace,
            WORKFLOW_PLURAL,
            state.name,
            operations,
            _request_timeout=self.timeout,
            _content_type=JSON_PATCH,
            _preload_content=False,  # the answer is the whole Workflow: read, never parsed
        )
        answer.read()
        answer.release_conn()


def _refusal_text(state: WorkflowState, err: k8s.ApiException) -> str:
    """The API server's reason (its `message`; never the request it may echo)."""
    reason = f"HTTP {err.status}"
    try:
        message = json.loads(err.body or "{}").get("message", "")
    except ValueError:
        message = ""
    if "Too long" in message:
        reason += ": the Workflow's annotations would exceed Kubernetes' 256 KiB limit"
    return f"cannot record the decision on Workflow {state.namespace}/{state.name}: {reason}"
