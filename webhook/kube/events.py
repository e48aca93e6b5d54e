"""An Event on the pod's Workflow for each pin, sent in the background.

`kubectl describe workflow` (and Argo's UI) then shows which tooling each
analysis pod got and why. Recording must never slow or fail an admission:
the hook only puts the Event on a bounded queue; one thread per process sends
them. A full queue drops the Event, a failed send is logged; neither raises.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s

from webhook.core.decision import Decision
from webhook.core.pods import PodFacts
from webhook.core.review import AdmissionRequest
from webhook.core.times import format_rfc3339
from webhook.kube.client import api_host, describe

log = logging.getLogger(__name__)

COMPONENT = "jetstream-pin"
WORKFLOW_API_VERSION = "argoproj.io/v1alpha1"
MESSAGE_LIMIT = 1024
_STOP = object()


def event_reason(decision: Decision) -> str:
    """`enrollment` -> `PinnedEnrollment`: Event reasons are CamelCase words."""
    words = str(decision.reason).split("-")
    return "Pinned" + "".join(word.capitalize() for word in words)


def describe_decision(pod_name: str, decision: Decision) -> str:
    images = ", ".join(f"{repo}@{choice.image.digest}" for repo, choice in decision.choices.items())
    parts = [f"pod {pod_name}: experiment {decision.slug} pinned ({decision.reason})"]
    parts.append(f"image {images}" if images else "image already given by digest")
    if decision.pin is not None:
        parts.append(f"override from {decision.pin.origin}")
    if decision.enrollment_consulted:
        when = decision.enrolled_at
        parts.append(f"enrolled at {format_rfc3339(when)}" if when else "not enrolled")
    parts += [f"{name} {sha}" for name, sha in decision.shas.items()]
    text = "; ".join(parts)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def workflow_uid(pod: Any, workflow: str) -> str | None:
    """The Workflow's uid from the pod's ownerReferences (Argo sets it), if present."""
    metadata = pod.get("metadata") if isinstance(pod, Mapping) else None
    owners = metadata.get("ownerReferences") if isinstance(metadata, Mapping) else None
    for owner in owners if isinstance(owners, list) else []:
        if (
            isinstance(owner, Mapping)
            and owner.get("kind") == "Workflow"
            and str(owner.get("apiVersion", "")).startswith("argoproj.io/")
            and owner.get("name") == workflow
            and isinstance(owner.get("uid"), str)
        ):
            return str(owner["uid"])
    return None


def pin_event(
    request: AdmissionRequest,
    facts: PodFacts,
    decision: Decision,
    instance: str,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """The core/v1 Event for one decision; None when the pod belongs to no Workflow."""
    workflow = facts.workflow
    namespace = request.namespace or facts.namespace
    if not workflow or not namespace:
        return None
    moment = format_rfc3339(now or datetime.now(UTC))
    pod = request.object if isinstance(request.object, Mapping) else {}
    pod_name = facts.name or request.name or _generate_name(pod) or "(unnamed)"
    involved: dict[str, Any] = {
        "apiVersion": WORKFLOW_API_VERSION,
        "kind": "Workflow",
        "name": workflow,
        "namespace": namespace,
    }
    uid = workflow_uid(pod, workflow)
    if uid is not None:
        involved["uid"] = uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{workflow[:200]}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
        "involvedObject": involved,
        "type": "Normal",
        "reason": event_reason(decision),
        "message": describe_decision(pod_name, decision),
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance[:128],
        "firstTimestamp": moment,
        "lastTimestamp": moment,
        "count": 1,
    }


def _generate_name(pod: Mapping[str, Any]) -> str:
    metadata = pod.get("metadata")
    value = metadata.get("generateName") if isinstance(metadata, Mapping) else None
    return f"{value}*" if isinstance(value, str) and value else ""


class EventRecorder:
    """A `DecisionSideEffect`: queue an Event per decision, send it from a background thread."""

    def __init__(
        self,
        api: k8s.ApiClient,
        timeout: float = 2.0,
        queue_size: int = 1000,
        instance: str | None = None,
    ) -> None:
        self.api = api
        self.timeout = timeout
        self.instance = instance or socket.gethostname()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.dropped = 0
        self.failed = 0

    def __call__(self, request: AdmissionRequest, facts: PodFacts, decision: Decision) -> None:
        try:
            event = pin_event(request, facts, decision, self.instance)
            if event is None:
                return
            self._start()
            self._queue.put_nowait(event)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            log.warning("event queue full: dropped the Event for %s", facts.workflow)
        except Exception:
            log.exception("could not queue the Event for %s", facts.workflow)

    def _start(self) -> None:
        # Started on first use, in the process that records: threads do not survive a fork.
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="jetstream-pin-events", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        core = k8s.CoreV1Api(self.api)
        while True:
            event = self._queue.get()
            try:
                if event is _STOP:
                    return
                self._send(core, event)
            finally:
                self._queue.task_done()

    def _send(self, core: k8s.CoreV1Api, event: dict[str, Any]) -> None:
        namespace = event["metadata"]["namespace"]
        try:
            body = k8s.CoreV1Event.from_dict(event)
            assert body is not None
            core.create_namespaced_event(namespace, body, _request_timeout=self.timeout)
        except Exception as err:
            with self._lock:
                self.failed += 1
            cause = describe(err, api_host(self.api), self.timeout)
            log.warning(
                "could not record the Event for Workflow %s/%s: %s",
                namespace,
                event["involvedObject"]["name"],
                cause,
            )
            return
        with self._lock:
            self.sent += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued Event was sent or failed (tests, shutdown)."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def stop(self) -> None:
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
        if running:
            with contextlib.suppress(queue.Full):  # a daemon thread ends with the process anyway
                self._queue.put(_STOP, timeout=1.0)
