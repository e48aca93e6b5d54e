"""`jetstream-pin check`: ask the installed webhook for a decision, as `helm test` does.

A server-side dry run of an Argo-shaped pod goes through the API server and
every admission webhook exactly as a real pod would, but nothing is stored
and the webhook records no Event (sideEffects NoneOnDryRun). The answer says
whether the installed webhook is reachable, trusted and deciding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes import client as k8s

from webhook.kube.client import source_error
from webhook.sources import SourceError

SOURCE = "Kubernetes API"
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
SLUG_LABEL = "jetstream/experiment-slug"
AUDIT_WARNING = "jetstream-pin audit mode"


@dataclass(frozen=True)
class Answer:
    pod: dict[str, Any]
    warnings: list[str]


def sample_pod(image: str, slug: str) -> dict[str, Any]:
    """What Argo creates for one Jetstream step: `main` after Argo's `wait`."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "jetstream-pin-check-",
            "labels": {WORKFLOW_LABEL: "jetstream-pin-check", SLUG_LABEL: slug},
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "main", "image": image, "command": ["jetstream", "run"]},
            ],
        },
    }


def dry_run(api: k8s.ApiClient, namespace: str, pod: dict[str, Any], timeout: float) -> Answer:
    """Create `pod` with dryRun=All; the pod as admitted and the warnings the client got."""
    core = k8s.CoreV1Api(api)
    body: Any = pod  # sent as it is
    try:
        raw: Any = core.create_namespaced_pod(
            namespace, body, dry_run="All", _request_timeout=timeout, _preload_content=False
        )
    except k8s.ApiException as err:
        raise SourceError(
            SOURCE, f"the dry run was refused: HTTP {err.status} {err.reason}: {_message(err)}"
        ) from None
    except Exception as err:
        raise source_error(SOURCE, api, err, timeout) from None
    return Answer(json.loads(raw.data), _warnings(raw.headers.getlist("Warning")))


def _message(err: k8s.ApiException) -> str:
    """The Status message the API server sent (e.g. the webhook's refusal)."""
    try:
        return str(json.loads(err.body or "{}").get("message", ""))[:500]
    except ValueError:
        return ""


def _warnings(values: list[str]) -> list[str]:
    """`299 - "text"` (RFC 7234), one header per warning."""
    return [v.split(" ", 2)[-1].strip().removeprefix('"').removesuffix('"') for v in values]


def verdict(mode: Literal["enforce", "audit"], answer: Answer) -> tuple[bool, str]:
    """Whether the webhook decided as `mode` should, and one line saying what it did."""
    [main] = [c for c in answer.pod["spec"]["containers"] if c["name"] == "main"]
    annotations = answer.pod["metadata"].get("annotations") or {}
    if mode == "audit":
        said = [w for w in answer.warnings if w.startswith(AUDIT_WARNING)]
        if said:
            return True, f"audit mode, the webhook answered: {said[0]}"
        return False, "audit mode, but no jetstream-pin warning came back: is the webhook called?"
    if "@sha256:" in main["image"] and "jetstream/pin-reason" in annotations:
        reason = annotations["jetstream/pin-reason"]
        return True, f"pinned to {main['image']} (jetstream/pin-reason: {reason})"
    return False, f"not pinned ({main['image']}): is the webhook registered for this namespace?"
