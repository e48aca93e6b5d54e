"""The chart's ValidatingAdmissionPolicy and binding on the real API server, as helm renders them.

`install` applies both for one release (its namespaces come from the values, as
for the webhook) and returns once the API server enforces them: like webhook
configurations, bindings are picked up asynchronously, so an unpinned
experiment pod is created as a dry run until the policy answers it.
"""

from __future__ import annotations

from typing import Any

from harness import helm
from harness.builders import argo_pod
from harness.controlplane.client import Answer, create_in
from harness.controlplane.plane import ControlPlane
from harness.controlplane.registration import RELEASE_NAMESPACE

POLICY_TEMPLATE = "templates/validatingpolicy.yaml"
# In every message the policy gives: how a probe (and a reader) recognises it.
MARK = "is not pinned by jetstream-pin"


def render(release: str, kube_version: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy and its binding for `release`, as helm renders them for that version."""
    return helm.render(
        release, RELEASE_NAMESPACE, kube_version.lstrip("v"), values=values,
        extra=("--show-only", POLICY_TEMPLATE),
    )  # fmt: skip


def answered(answer: Answer) -> bool:
    """The policy refused the pod, or warned about it."""
    return MARK in answer.message or any(MARK in warning for warning in answer.warnings)


def install(
    plane: ControlPlane, release: str, namespace: str, values: dict[str, Any], timeout: float = 30
) -> str:
    """Apply the policy for `namespace` (named in `values`) and wait until it answers there;
    what kubectl printed applying it."""
    applied = plane.apply(render(release, plane.version, values))
    plane.wait_for(
        lambda: answered(create_in(plane, namespace, argo_pod("policy-probe"), dry_run=True)),
        timeout,
        what=f"policy {release} answering in {namespace}",
    )
    return applied
