"""Pods keep being pinned while the webhook is disturbed.

A `PodStream` creates Argo-shaped Jetstream pods (a few per second, each create
checked, the stored answer read) through each disturbance; none may fail and
none may be stored unpinned:
- one webhook replica deleted (the Deployment replaces it);
- the renewal CronJob run by hand (`kubectl create job --from=cronjob/...`)
  with a renewal window that makes it rotate the certificate;
- `helm upgrade` to a rebuilt image (a rolling update, maxUnavailable 0);
- an upgrade from a release that rendered the webhook configuration as a chart
  object (here: certificates `provided`) to the Job-registered one: the
  pre-upgrade Job keeps it (`helm.sh/resource-policy: keep`) until the
  post-upgrade Job registers it again, so no pod meets a missing webhook.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from harness.controlplane import images
from harness.controlplane.nodecluster import (
    STREAM_NAMESPACE,
    NodeCluster,
    chart_values,
    get,
)
from harness.controlplane.registration import RELEASE_NAMESPACE
from harness.podstream import PodStream
from tests.node.cluster import webhook_pods
from webhook import certs

RELEASE = "jetstream-pin"


def _assert_clean(stream: PodStream, what: str) -> None:
    print(f"{what}: {stream.summary()}")
    assert stream.failed == [], stream.summary()
    assert stream.unpinned == [], stream.summary()


def _ready(cluster: NodeCluster, release: str = RELEASE,
           namespace: str = RELEASE_NAMESPACE) -> bool:  # fmt: skip
    deployment = get(cluster, "deployment", release, namespace=namespace)
    status = deployment["status"]
    wanted = deployment["spec"]["replicas"]
    return bool(status.get("readyReplicas") == status.get("updatedReplicas") == wanted
                and status.get("replicas") == wanted)  # fmt: skip


def _status(cluster: NodeCluster) -> Any:
    return get(cluster, "deployment", RELEASE, namespace=RELEASE_NAMESPACE)["status"]


def test_deleting_a_webhook_replica(node_cluster: NodeCluster) -> None:
    with PodStream(node_cluster.plane, STREAM_NAMESPACE) as stream:
        stream.wait_for(4)
        [pod, *_] = webhook_pods(node_cluster)
        node_cluster.plane.kubectl(
            "-n", RELEASE_NAMESPACE, "delete", "pod", pod["metadata"]["name"], "--wait=false"
        )
        stream.wait_for(8)
        node_cluster.plane.wait_for(lambda: _ready(node_cluster), 120, "two ready replicas again",
             lambda: _status(node_cluster))  # fmt: skip
        stream.wait_for(4)
    _assert_clean(stream, "one replica deleted")


def _tls(cluster: NodeCluster) -> dict[str, bytes]:
    secret = get(cluster, "secret", f"{RELEASE}-tls", namespace=RELEASE_NAMESPACE)
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


def _renewal_job(cluster: NodeCluster, name: str) -> dict[str, Any]:
    """The Job `kubectl create job --from=cronjob/<release>-renew` makes, a year on: its
    renewal window made wider than the pair's validity, so it rotates the pair now."""
    job: dict[str, Any] = json.loads(cluster.plane.kubectl(
        "-n", RELEASE_NAMESPACE, "create", "job", name, f"--from=cronjob/{RELEASE}-renew",
        "--dry-run=client", "-o", "json",
    ).stdout)  # fmt: skip
    [container] = job["spec"]["template"]["spec"]["containers"]
    command = [a for a in container["command"]
               if not a.startswith(("--days=", "--renew-before-days="))]  # fmt: skip
    container["command"] = [*command, "--days=500", "--renew-before-days=400"]
    return job


def test_the_renewal_cronjob_rotates_the_certificate(node_cluster: NodeCluster) -> None:
    plane = node_cluster.plane
    before = _tls(node_cluster)
    with PodStream(plane, STREAM_NAMESPACE) as stream:
        stream.wait_for(4)
        job = _renewal_job(node_cluster, "renew-by-hand")
        plane.kubectl("create", "-f", "-", input_text=json.dumps(job))
        plane.kubectl("-n", RELEASE_NAMESPACE, "wait", "--for=condition=Complete",
                      "--timeout=120s", "job/renew-by-hand", timeout=150)  # fmt: skip
        stream.wait_for(12)
    _assert_clean(stream, "certificate rotated by the renewal CronJob")
    after = _tls(node_cluster)
    assert after["tls.crt"] != before["tls.crt"]
    assert after["ca-previous.crt"] == before["ca.crt"]
    bundle = base64.b64decode(get(node_cluster, "mutatingwebhookconfiguration", RELEASE)
                              ["webhooks"][0]["clientConfig"]["caBundle"])  # fmt: skip
    assert before["ca.crt"].strip() in bundle
    assert after["ca.crt"].strip() in bundle
    plane.kubectl("-n", RELEASE_NAMESPACE, "delete", "job", "renew-by-hand")


def test_helm_upgrade_to_a_rebuilt_image(node_cluster: NodeCluster) -> None:
    rebuilt = images.build_webhook(
        node_cluster.registry, node_cluster.node.runtime_dir / "buildah", revision="rebuilt"
    )
    assert rebuilt != node_cluster.tag
    values = chart_values(node_cluster.registry, rebuilt)
    with PodStream(node_cluster.plane, STREAM_NAMESPACE) as stream:
        stream.wait_for(4)
        seconds = node_cluster.install(values, command="upgrade")
        stream.wait_for(4)
    print(f"helm upgrade --wait: {seconds:.1f} s")
    _assert_clean(stream, "helm upgrade to a rebuilt image")
    digest = node_cluster.registry.digest(images.WEBHOOK_NAME, rebuilt)
    pods = webhook_pods(node_cluster)
    assert len(pods) == 2
    assert all(p["status"]["containerStatuses"][0]["imageID"].endswith(digest) for p in pods)


LEGACY = "jetstream-pin-legacy"
LEGACY_PODS = "legacy-pods"


def _legacy_values(cluster: NodeCluster, ca_pem: bytes) -> dict[str, Any]:
    return chart_values(
        cluster.registry, cluster.tag, webhook={"namespaces": [LEGACY_PODS]},
        certificates={"mode": "provided",
                      "provided": {"secretName": f"{LEGACY}-tls",
                                   "caBundle": base64.b64encode(ca_pem).decode()}},
    )  # fmt: skip


def test_upgrade_from_a_chart_rendered_configuration_keeps_the_webhook(
    node_cluster: NodeCluster,
) -> None:
    plane = node_cluster.plane
    node_cluster.prepare_release(LEGACY, LEGACY_PODS)
    service = [f"{LEGACY}", f"{LEGACY}.{LEGACY}", f"{LEGACY}.{LEGACY}.svc",
               f"{LEGACY}.{LEGACY}.svc.cluster.local"]  # fmt: skip
    bundle = certs.issue(service)
    plane.apply([
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": f"{LEGACY}-tls", "namespace": LEGACY},
         "data": {"tls.crt": base64.b64encode(bundle.cert_pem).decode(),
                  "tls.key": base64.b64encode(bundle.key_pem).decode(),
                  "ca.crt": base64.b64encode(bundle.ca_pem).decode()}},
    ])  # fmt: skip
    node_cluster.install(_legacy_values(node_cluster, bundle.ca_pem), name=LEGACY,
                         namespace=LEGACY)  # fmt: skip
    rendered = get(node_cluster, "mutatingwebhookconfiguration", LEGACY)
    assert rendered["metadata"]["annotations"]["meta.helm.sh/release-name"] == LEGACY
    selfmanaged = chart_values(node_cluster.registry, node_cluster.tag,
                               webhook={"namespaces": [LEGACY_PODS]})  # fmt: skip
    with PodStream(plane, LEGACY_PODS) as stream:
        stream.wait_for(4)
        seconds = node_cluster.install(selfmanaged, command="upgrade", name=LEGACY,
                                       namespace=LEGACY)  # fmt: skip
        stream.wait_for(4)
    print(f"upgrade provided -> selfManaged ({seconds:.1f} s)")
    try:
        _assert_clean(stream, "upgrade from a chart-rendered configuration")
        registered = get(node_cluster, "mutatingwebhookconfiguration", LEGACY)
        [owner] = registered["metadata"]["ownerReferences"]
        assert owner["kind"] == "ClusterRole"
        assert owner["name"] == f"{LEGACY}-renew"
        assert "helm.sh/resource-policy" not in registered["metadata"].get("annotations", {})
    finally:
        node_cluster.helm("uninstall", LEGACY, f"--namespace={LEGACY}", "--wait")
