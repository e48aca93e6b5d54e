"""The chart's identities against the real RBAC authorizer.

The webhook runs with a TokenRequest token of the chart's ServiceAccount, so
every lookup below succeeds only if the chart's Roles allow it. The
certificate Job's ServiceAccount runs the very command the hook Job runs. And
`kubectl auth can-i --list`, asked as each identity, shows nothing beyond what
docs/operating.md ("What the chart installs") states.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from harness import helm
from harness.builders import JETSTREAM, ROOT, argo_pod
from harness.controlplane.plane import ControlPlane
from harness.controlplane.registration import RELEASE_NAMESPACE
from harness.controlplane.release import fullname
from tests.cluster.conftest import Deploy, Deployment
from tests.cluster.test_admission import LATEST_IMAGE, _events, _workflow

Rule = tuple[str, str, str]  # resource, resource names, verbs as kubectl prints them


def can_i(plane: ControlPlane, kubeconfig: Path, namespace: str) -> set[Rule]:
    """What the identity may do in `namespace`, read from `kubectl auth can-i --list`."""
    table = plane.kubectl(
        "auth", "can-i", "--list", "-n", namespace, kubeconfig=kubeconfig
    ).stdout.splitlines()
    rules = set()
    for line in table[1:]:
        if not line.strip() or line.startswith(" "):
            continue  # non-resource URLs: discovery, granted to every authenticated user
        resource, _urls, names, verbs = re.split(r"\s{2,}", line.strip())[:4]
        rules.add((resource, names, verbs))
    return rules


def test_webhook_identity_does_its_job(deploy: Deploy) -> None:
    deployment = deploy("identity")
    plane, namespace = deployment.plane, deployment.namespace
    # get workflows: a Workflow label decides the pin (what `argo submit -l` sets).
    _workflow(plane, namespace, "labelled-run", {"jetstream/pin": "latest"})
    pod = argo_pod("my-experiment", workflow="labelled-run")
    answer = deployment.create(pod)
    assert answer.status == 201, answer.body
    assert answer.container("main")["image"] == f"{JETSTREAM}@{LATEST_IMAGE}"
    assert answer.warnings == [
        "jetstream-pin: my-experiment pinned to latest by label jetstream/pin of Workflow "
        "labelled-run"
    ]
    # create events: the decision is recorded on the Workflow.
    [event] = plane.wait_for(lambda: _events(plane, namespace, "labelled-run"), what="Event")
    assert event.reason == "PinnedLatest"
    assert event.source.component == "jetstream-pin"
    # get the overrides ConfigMap: an entry pins one experiment.
    rollout = "firefox-desktop-private-browsing-redesign-rollout"
    _set_override(plane, deployment, rollout, "latest")

    def overridden() -> bool:
        probe = deployment.create(argo_pod(rollout), dry_run=True)
        return probe.annotations().get("jetstream/pin-reason") == "latest"

    plane.wait_for(overridden, what="the ConfigMap override to apply")
    assert "HTTP 403" not in deployment.webhook.running.tail(200)


def _set_override(plane: ControlPlane, deployment: Deployment, slug: str, pin: str) -> None:
    with plane.api() as api:
        k8s.CoreV1Api(api).patch_namespaced_config_map(
            f"{fullname(deployment.release)}-overrides", RELEASE_NAMESPACE, {"data": {slug: pin}}
        )


def test_webhook_identity_may_do_nothing_more(deploy: Deploy) -> None:
    deployment = deploy("least-privilege")
    plane = deployment.plane
    name = fullname(deployment.release)
    webhook = plane.kubeconfig_for(RELEASE_NAMESPACE, name)
    nobody = plane.kubeconfig_for(deployment.namespace, "default")
    baseline = can_i(plane, nobody, deployment.namespace)
    assert can_i(plane, webhook, deployment.namespace) - baseline == {
        ("workflows.argoproj.io", "[]", "[get patch]"),  # patch: recording decisions
        ("events", "[]", "[create]"),
    }
    assert can_i(plane, webhook, RELEASE_NAMESPACE) - baseline == {
        ("configmaps", f"[{name}-overrides]", "[get]"),
    }
    assert can_i(plane, webhook, "default") - baseline == set()


def _certificate_job_identity(plane: ControlPlane, release: str) -> list[str]:
    """Apply the hook Job's ServiceAccount and RBAC (not the Job: no kubelet runs it);
    return the Job's command line."""
    objects = helm.render(
        release, RELEASE_NAMESPACE, plane.version.lstrip("v"),
        extra=("--show-only", "templates/certs-job.yaml"),
    )  # fmt: skip
    [job] = [o for o in objects if o["kind"] == "Job" and o["metadata"]["name"].endswith("-certs")]
    plane.apply([o for o in objects if o["kind"] != "Job"])
    command: list[str] = job["spec"]["template"]["spec"]["containers"][0]["command"]
    return command


def run_certificate_job(plane: ControlPlane, release: str, *extra: str) -> str:
    """The hook Job's own command, run here as the Job's ServiceAccount."""
    command = _certificate_job_identity(plane, release)
    assert command[:2] == ["jetstream-pin", "certs"]
    kubeconfig = plane.kubeconfig_for(RELEASE_NAMESPACE, f"{fullname(release)}-certs")
    done = subprocess.run(
        [sys.executable, "-m", "webhook", *command[1:], *extra, f"--kubeconfig={kubeconfig}"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_certificate_job_identity_writes_its_secret_and_patches_the_ca_bundle(
    deploy: Deploy,
) -> None:
    deployment = deploy("certs-identity")
    plane, name = deployment.plane, fullname(deployment.release)
    printed = run_certificate_job(plane, deployment.release)
    assert f"secret {RELEASE_NAMESPACE}/{name}-tls: issued" in printed
    assert f"mutatingwebhookconfiguration {name}: caBundle (1 CA) set on 1 webhook(s)" in printed
    with plane.api() as api:
        secret: Any = k8s.CoreV1Api(api).read_namespaced_secret(f"{name}-tls", RELEASE_NAMESPACE)
        admission: Any = k8s.AdmissionregistrationV1Api(api)
        configuration = admission.read_mutating_webhook_configuration(name)
    assert secret.type == "kubernetes.io/tls"
    assert configuration.webhooks[0].client_config.ca_bundle == secret.data["ca.crt"]
    again = run_certificate_job(plane, deployment.release)
    assert "reused (still valid)" in again
    job = plane.kubeconfig_for(RELEASE_NAMESPACE, f"{name}-certs")
    nobody = plane.kubeconfig_for(RELEASE_NAMESPACE, "default")
    extra = can_i(plane, job, RELEASE_NAMESPACE) - can_i(plane, nobody, RELEASE_NAMESPACE)
    assert extra == {
        ("secrets", f"[{name}-tls]", "[get update]"),
        ("secrets", "[]", "[create]"),
        ("configmaps", f"[{name}-webhook]", "[get]"),
        ("deployments.apps", f"[{name}]", "[get]"),
        ("mutatingwebhookconfigurations.admissionregistration.k8s.io", f"[{name}]",
         "[get patch update]"),
        ("mutatingwebhookconfigurations.admissionregistration.k8s.io", "[]", "[create]"),
        ("clusterroles.rbac.authorization.k8s.io", f"[{name}-renew]", "[get]"),
    }  # fmt: skip
